"""The ward's alarm state machine (IEC 60601-1-8), free of Qt.

Analyzers submit :class:`~inference.conditions.AlarmCondition` updates (raise or
clear); staff acknowledge and pause audio; :meth:`AlarmManager.tick` advances
time.  The manager decides what each bed shows and what the speaker plays, and
writes an alarm log.

Behaviour (terms as in IEC 60601-1-8)
-------------------------------------
- One alarm per ``(bed_id, kind)``.  Raising an active kind again updates its
  text and value; raising it at a higher priority is an escalation: it sounds
  again and starts a new log entry.
- Acknowledge (one bed or all) silences the alarms present at that moment
  only; the visual signal stays (steady, no longer flashing) while the
  condition lasts.  A condition raised later sounds again.
- Latching (asystole, VF, VT, or ``latching=True``): the alarm stays displayed
  and sounding after its condition ends, until acknowledged.
- Audio pause (default 2 min, admin-settable; one bed or the ward): no sound,
  the visual signal continues.  *A new HIGH priority condition raised during a
  pause sounds at once* -- Vigil's choice (settable): the pause was given for
  the alarms the nurse saw, not for an arrest that starts a minute later.  New
  medium/low conditions stay silent until the pause ends.  (The clause of
  IEC 60601-1-8 on new conditions during AUDIO PAUSED could not be checked
  against the standard's text here; revisit when it is at hand.)
- Reminder: an acknowledged alarm whose condition persists re-sounds one burst
  every ``reminder_s`` (default 150 s, i.e. within the 2-3 min bedside practice).
- Technical alarms (lead off, signal loss, low battery ...) carry their own
  priority; at equal priority a patient alarm wins the tile.
- Alarm log: one entry per alarm episode (condition, priority, time on/off,
  value, limit in force, who acknowledged and when), kept in memory and passed
  to ``on_log`` every time it changes (upsert by ``entry_id``).

Thread safety: every public method takes one re-entrant lock.  Callbacks
(``on_log``, ``on_change``) and the audio sink are called on the calling thread
while that lock is held, so they must be quick and must not block: put on a
queue, emit a queued Qt signal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Final

from app.alarms.audio import AudioSink
from app.alarms.visual import indicator_lit
from inference.conditions import AlarmCondition, Priority

logger = logging.getLogger(__name__)

#: Kinds that latch whatever the analyzer says: the lethal arrhythmias.
LATCHING_KINDS: Final = frozenset({"asystole", "vf", "vt"})


@dataclass(frozen=True, slots=True)
class AlarmSettings:
    """Admin settings of the alarm system.

    Parameters
    ----------
    audio_pause_s
        Length of an audio pause.
    reminder_s
        Interval of the reminder burst for acknowledged, still-present alarms;
        None turns reminders off.
    new_high_sounds_during_pause
        A HIGH priority condition raised during an audio pause sounds at once.
    log_capacity
        Closed log entries kept in memory (the store keeps them all).
    """

    audio_pause_s: float = 120.0
    reminder_s: float | None = 150.0
    new_high_sounds_during_pause: bool = True
    log_capacity: int = 10_000


@dataclass(frozen=True, slots=True)
class AlarmView:
    """One displayed alarm, as the UI sees it.  Times are on the manager's clock."""

    bed_id: str
    kind: str
    priority: Priority
    message: str
    technical: bool
    latching: bool
    value: float | None
    limit: float | None
    onset_s: float
    present: bool  # False: the condition ended but the alarm is latched
    acknowledged: bool
    ack_by: str
    audible: bool  # sounding now


@dataclass(frozen=True, slots=True)
class BedAlarmDisplay:
    """What a bed's tile shows: its worst alarm wins.

    ``priority`` is ``Priority.NONE`` and ``message`` empty when the bed is quiet.
    ``flashing`` is False for a steady indicator (low priority, or acknowledged).
    """

    bed_id: str
    priority: Priority
    message: str
    technical: bool
    flashing: bool
    audible: bool
    acknowledged: bool
    onset_s: float
    audio_paused_s: float  # seconds of audio pause left for this bed (0: not paused)
    alarms: tuple[AlarmView, ...]  # all displayed, worst first

    @property
    def count(self) -> int:
        """Number of displayed alarms."""
        return len(self.alarms)

    def lit(self, now_s: float) -> bool:
        """Whether the tile's alarm indicator is lit at ``now_s`` (manager clock)."""
        if self.priority is Priority.NONE:
            return False
        if not self.flashing:
            return True
        return indicator_lit(self.priority, now_s, self.onset_s)


@dataclass(frozen=True, slots=True)
class AlarmLogEntry:
    """One alarm episode in the log.  Times are wall-clock seconds (epoch)."""

    entry_id: int
    bed_id: str
    kind: str
    priority: Priority
    technical: bool
    latching: bool
    message: str
    value: float | None
    limit: float | None
    t_on: float
    t_off: float | None = None
    ack_by: str = ""
    t_ack: float | None = None
    source: str = ""
    source_t_s: float = 0.0  # the condition's time on its source's clock


@dataclass
class _Alarm:
    condition: AlarmCondition
    latching: bool
    onset: float
    entry_id: int
    present: bool = True
    acknowledged: bool = False
    ack_by: str = ""
    next_reminder: float | None = None


@dataclass
class _Pause:
    start: float
    until: float


@dataclass
class _LogBook:
    entries: dict[int, AlarmLogEntry] = field(default_factory=dict)
    next_id: int = 1


def _rank(a: _Alarm) -> tuple[int, bool, bool, float]:
    # Worst first: priority, then unacknowledged, then patient over technical,
    # then the most recent.
    c = a.condition
    return (int(c.priority), not a.acknowledged, not c.technical, a.onset)


class AlarmManager:
    """IEC 60601-1-8 alarm state for the whole ward.

    Parameters
    ----------
    settings
        Admin settings; replace them with :attr:`settings` at run time.
    clock
        Monotonic seconds, for timers and flashing (injectable for tests).
    wall_clock
        Epoch seconds, for the alarm log.
    audio
        Where sound goes (:class:`~app.alarms.audio.AudioOut`), or None.
    on_log
        Called with each new or changed :class:`AlarmLogEntry`.
    on_change
        Called after any change of what is displayed or sounding.
    """

    def __init__(
        self,
        settings: AlarmSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        audio: AudioSink | None = None,
        on_log: Callable[[AlarmLogEntry], None] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings or AlarmSettings()
        self._clock = clock
        self._wall = wall_clock
        self._audio = audio
        self._on_log = on_log
        self._on_change = on_change
        self._lock = threading.RLock()
        self._alarms: dict[tuple[str, str], _Alarm] = {}
        self._ward_pause: _Pause | None = None
        self._bed_pause: dict[str, _Pause] = {}
        self._log = _LogBook()
        self._sounding = Priority.NONE

    # --- settings & time -----------------------------------------------------------

    @property
    def settings(self) -> AlarmSettings:
        """The admin settings in force."""
        return self._settings

    @settings.setter
    def settings(self, value: AlarmSettings) -> None:
        with self._lock:
            self._settings = value
            if value.reminder_s is None:
                for a in self._alarms.values():
                    a.next_reminder = None

    def now(self) -> float:
        """The manager's clock (use it for :meth:`BedAlarmDisplay.lit`)."""
        return self._clock()

    # --- conditions ----------------------------------------------------------------

    def submit(self, condition: AlarmCondition) -> None:
        """Raise (``condition.active``) or clear one condition."""
        with self._lock:
            if condition.active:
                self._raise(condition)
            else:
                self._clear(condition.bed_id, condition.kind)
            self._refresh()

    def submit_all(self, conditions: Iterable[AlarmCondition]) -> None:
        """Submit several updates, in order."""
        with self._lock:
            for c in conditions:
                self.submit(c)

    def _raise(self, c: AlarmCondition) -> None:
        now = self._clock()
        key = (c.bed_id, c.kind)
        a = self._alarms.get(key)
        latching = c.latching or c.kind in LATCHING_KINDS
        if a is None:
            self._alarms[key] = _Alarm(c, latching, now, self._open_entry(c, latching))
            return
        old = a.condition
        if not a.present or c.priority != old.priority:
            # A latched alarm whose condition comes back, or a change of
            # priority, is a new episode in the log.
            if a.present:
                self._close_entry(a.entry_id)
            a.entry_id = self._open_entry(c, latching)
            if not a.present or c.priority > old.priority:
                a.acknowledged, a.ack_by, a.next_reminder = False, "", None
                a.onset = now
            a.present = True
        a.condition, a.latching = c, latching

    def _clear(self, bed_id: str, kind: str) -> None:
        a = self._alarms.get((bed_id, kind))
        if a is None or not a.present:
            return
        a.present = False
        a.next_reminder = None
        self._close_entry(a.entry_id)
        if not a.latching or a.acknowledged:
            del self._alarms[(bed_id, kind)]

    def remove_bed(self, bed_id: str) -> None:
        """Drop every alarm of a bed (patient discharged); open log entries close."""
        with self._lock:
            for key in [k for k in self._alarms if k[0] == bed_id]:
                a = self._alarms.pop(key)
                if a.present:
                    self._close_entry(a.entry_id)
            self._bed_pause.pop(bed_id, None)
            self._refresh()

    # --- staff actions -------------------------------------------------------------

    def acknowledge(self, bed_id: str | None = None, user: str = "") -> int:
        """Acknowledge the displayed alarms of one bed (or all beds).

        Returns the number of alarms acknowledged.  Latched alarms whose
        condition has ended disappear; the others stay displayed, silenced.
        """
        with self._lock:
            now, wall = self._clock(), self._wall()
            count = 0
            for key, a in list(self._alarms.items()):
                if a.acknowledged or (bed_id is not None and key[0] != bed_id):
                    continue
                count += 1
                a.acknowledged, a.ack_by = True, user
                reminder = self._settings.reminder_s
                a.next_reminder = now + reminder if (reminder and a.present) else None
                entry = self._log.entries.get(a.entry_id)
                if entry is not None:
                    self._put_entry(replace(entry, ack_by=user, t_ack=wall))
                if not a.present:
                    del self._alarms[key]
            if count:
                logger.info(
                    "acknowledged %d alarm(s) on %s by %r", count, bed_id or "all beds", user
                )
            self._refresh()
            return count

    def pause_audio(self, bed_id: str | None = None, duration_s: float | None = None) -> None:
        """Pause alarm sound for one bed (or the ward) for ``duration_s`` (default: settings)."""
        with self._lock:
            now = self._clock()
            length = self._settings.audio_pause_s if duration_s is None else duration_s
            pause = _Pause(start=now, until=now + length)
            if bed_id is None:
                self._ward_pause = pause
            else:
                self._bed_pause[bed_id] = pause
            logger.info("audio paused %.0f s on %s", length, bed_id or "all beds")
            self._refresh()

    def resume_audio(self, bed_id: str | None = None) -> None:
        """End an audio pause early (ward pause when ``bed_id`` is None)."""
        with self._lock:
            if bed_id is None:
                self._ward_pause = None
            else:
                self._bed_pause.pop(bed_id, None)
            self._refresh()

    def audio_paused_s(self, bed_id: str | None = None) -> float:
        """Seconds of audio pause left for ``bed_id`` (ward pause included); 0 when none."""
        with self._lock:
            now = self._clock()
            pauses = [self._ward_pause, self._bed_pause.get(bed_id) if bed_id else None]
            return max((p.until - now for p in pauses if p and p.until > now), default=0.0)

    def tick(self) -> None:
        """Advance time: end pauses, play reminders.  Call about once a second."""
        with self._lock:
            now = self._clock()
            if self._ward_pause and now >= self._ward_pause.until:
                self._ward_pause = None
            for bed in [b for b, p in self._bed_pause.items() if now >= p.until]:
                del self._bed_pause[bed]
            reminder = Priority.NONE
            for a in self._alarms.values():
                if a.next_reminder is None or now < a.next_reminder:
                    continue
                a.next_reminder = now + (self._settings.reminder_s or 0.0)
                if not self._paused_for(a, now):
                    reminder = max(reminder, a.condition.priority)
            if reminder is not Priority.NONE and self._audio is not None:
                self._audio.play_once(reminder)
            self._refresh()

    # --- what to show ----------------------------------------------------------------

    def bed_display(self, bed_id: str) -> BedAlarmDisplay:
        """What the tile of ``bed_id`` shows now."""
        with self._lock:
            now = self._clock()
            alarms = sorted(
                (a for k, a in self._alarms.items() if k[0] == bed_id), key=_rank, reverse=True
            )
            views = tuple(self._view(a, now) for a in alarms)
            paused = self.audio_paused_s(bed_id)
            if not views:
                return BedAlarmDisplay(
                    bed_id, Priority.NONE, "", False, False, False, False, 0.0, paused, ()
                )
            worst = views[0]
            return BedAlarmDisplay(
                bed_id=bed_id,
                priority=worst.priority,
                message=worst.message,
                technical=worst.technical,
                flashing=worst.priority >= Priority.MEDIUM and not worst.acknowledged,
                audible=any(v.audible for v in views),
                acknowledged=worst.acknowledged,
                onset_s=worst.onset_s,
                audio_paused_s=paused,
                alarms=views,
            )

    def banner(self) -> tuple[AlarmView, ...]:
        """Every displayed alarm of the ward, worst first (for the ward banner)."""
        with self._lock:
            now = self._clock()
            return tuple(
                self._view(a, now) for a in sorted(self._alarms.values(), key=_rank, reverse=True)
            )

    def sounding_priority(self) -> Priority:
        """Highest priority now sounding (``Priority.NONE``: silent)."""
        with self._lock:
            return self._sounding

    def log_entries(self, bed_id: str | None = None) -> tuple[AlarmLogEntry, ...]:
        """Alarm log, oldest first (all beds when ``bed_id`` is None)."""
        with self._lock:
            return tuple(
                e for e in self._log.entries.values() if bed_id is None or e.bed_id == bed_id
            )

    # --- internals -------------------------------------------------------------------

    def _view(self, a: _Alarm, now: float) -> AlarmView:
        c = a.condition
        return AlarmView(
            bed_id=c.bed_id,
            kind=c.kind,
            priority=c.priority,
            message=c.message,
            technical=c.technical,
            latching=a.latching,
            value=c.value,
            limit=c.limit,
            onset_s=a.onset,
            present=a.present,
            acknowledged=a.acknowledged,
            ack_by=a.ack_by,
            audible=self._audible(a, now),
        )

    def _paused_for(self, a: _Alarm, now: float) -> bool:
        for pause in (self._ward_pause, self._bed_pause.get(a.condition.bed_id)):
            if pause is None or now >= pause.until:
                continue
            breaks_through = (
                self._settings.new_high_sounds_during_pause
                and a.condition.priority is Priority.HIGH
                and a.onset > pause.start
            )
            if not breaks_through:
                return True
        return False

    def _audible(self, a: _Alarm, now: float) -> bool:
        return (
            not a.acknowledged
            and a.condition.priority is not Priority.NONE
            and not self._paused_for(a, now)
        )

    def _refresh(self) -> None:
        now = self._clock()
        sounding = max(
            (a.condition.priority for a in self._alarms.values() if self._audible(a, now)),
            default=Priority.NONE,
        )
        if sounding is not self._sounding:
            self._sounding = sounding
            if self._audio is not None:
                self._audio.set_sounding(sounding)
        self._notify_change()

    def _open_entry(self, c: AlarmCondition, latching: bool) -> int:
        entry_id = self._log.next_id
        self._log.next_id += 1
        self._put_entry(
            AlarmLogEntry(
                entry_id=entry_id,
                bed_id=c.bed_id,
                kind=c.kind,
                priority=c.priority,
                technical=c.technical,
                latching=latching,
                message=c.message,
                value=c.value,
                limit=c.limit,
                t_on=self._wall(),
                source=c.source,
                source_t_s=c.t_s,
            )
        )
        self._trim_log()
        return entry_id

    def _close_entry(self, entry_id: int) -> None:
        entry = self._log.entries.get(entry_id)
        if entry is not None and entry.t_off is None:
            self._put_entry(replace(entry, t_off=self._wall()))

    def _put_entry(self, entry: AlarmLogEntry) -> None:
        self._log.entries[entry.entry_id] = entry
        if self._on_log is not None:
            try:
                self._on_log(entry)
            except Exception:  # a failing store must never stop the alarms
                logger.exception("alarm log callback failed for entry %d", entry.entry_id)

    def _trim_log(self) -> None:
        closed = [i for i, e in self._log.entries.items() if e.t_off is not None]
        for entry_id in closed[: max(0, len(closed) - self._settings.log_capacity)]:
            del self._log.entries[entry_id]

    def _notify_change(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                logger.exception("alarm change callback failed")
