"""The episode book of a rhythm analyzer: open, alarm, escalate, close, clear.

:class:`EpisodeBook` keeps one open episode per kind (the alarm manager keeps
one alarm per ``(bed, kind)``), merges a new episode into the last one of its
kind when it starts within :attr:`RhythmSettings.merge_s` of that one's end
(one alarm, not a chattering series), and holds each raised alarm for at
least :attr:`RhythmSettings.alarm_hold_s` so a short event is seen.  Every
change is queued as an :class:`EpisodeUpdate`.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from inference.conditions import Priority
from inference.rhythm_types import (
    ALARM,
    CLEAR,
    OFFSET,
    ONSET,
    UPDATE,
    Episode,
    EpisodeUpdate,
    RhythmSettings,
)

logger = logging.getLogger(__name__)


class EpisodeBook:
    """Episodes of one bed and the updates not yet handed out.  Belongs to one thread.

    Parameters
    ----------
    fs_hz
        Sampling rate of the sample clock.
    settings
        Priorities, merge gaps and the alarm hold.
    now
        The clock's starting sample.
    """

    def __init__(self, fs_hz: float, settings: RhythmSettings, now: int = 0) -> None:
        self.fs_hz = float(fs_hz)
        self.settings = settings
        self._now = now
        self._open: dict[str, Episode] = {}
        self._closed: list[Episode] = []
        self._last_closed: dict[str, Episode] = {}
        self._pending_clear: dict[str, tuple[int, Episode]] = {}
        self._updates: list[EpisodeUpdate] = []
        self._next_id = 1

    def _sec(self, seconds: float) -> int:
        return int(round(seconds * self.fs_hz))

    @property
    def episodes(self) -> list[Episode]:
        """Closed episodes in order of onset, then the open ones."""
        closed = sorted(self._closed, key=lambda e: (e.onset_sample, e.episode_id))
        return closed + sorted(self._open.values(), key=lambda e: e.onset_sample)

    @property
    def open_episodes(self) -> dict[str, Episode]:
        """Episodes in progress, by kind (a copy)."""
        return dict(self._open)

    def take_updates(self) -> list[EpisodeUpdate]:
        """The updates queued since the last call, in order."""
        out, self._updates = self._updates, []
        return out

    def close_all(self) -> None:
        """End every open episode now and let every held alarm clear."""
        for kind in list(self._open):
            self._close(kind, self._now)
        for kind in list(self._pending_clear):
            self._emit_clear(kind)

    def _clear_due(self) -> None:
        for kind in [k for k, (t, _) in self._pending_clear.items() if self._now >= t]:
            self._emit_clear(kind)

    def _open_episode(
        self,
        kind: str,
        onset: int,
        message: str,
        *,
        value: float | None = None,
        limit: float | None = None,
        alarm: bool = True,
        priority: Priority | None = None,
    ) -> Episode:
        if kind in self._open:
            return self._open[kind]
        if priority is None:
            priority = self.settings.priorities.get(kind, Priority.LOW)
        prev = self._last_closed.get(kind)
        merge = self._sec(self.settings.merge_s.get(kind, 0.0))
        if (
            prev is not None
            and prev.offset_sample is not None
            and onset - prev.offset_sample <= merge
        ):
            # Continues the last episode of this kind: same alarm, not a new one.
            self._closed.remove(prev)
            del self._last_closed[kind]
            self._pending_clear.pop(kind, None)
            ep = replace(
                prev,
                offset_sample=None,
                message=message,
                value=value,
                limit=limit,
                priority=max(prev.priority, priority),
            )
            self._open[kind] = ep
            if ep.alarm_sample is not None:
                self._updates.append(EpisodeUpdate(UPDATE, ep, self._now))
            elif alarm and priority > Priority.NONE:
                self._raise(kind)
            return self._open[kind]
        ep = Episode(kind, int(onset), None, None, priority, message, value, limit, self._next_id)
        self._next_id += 1
        self._open[kind] = ep
        self._updates.append(EpisodeUpdate(ONSET, ep, self._now))
        if alarm and priority > Priority.NONE:
            self._raise(kind)
        return self._open[kind]

    def _raise(self, kind: str) -> None:
        ep = self._open[kind]
        if ep.alarm_sample is None and ep.priority > Priority.NONE:
            ep = replace(ep, alarm_sample=self._now)
            self._open[kind] = ep
            self._updates.append(EpisodeUpdate(ALARM, ep, self._now))

    def _escalate(
        self, kind: str, priority: Priority, message: str, value: float | None, limit: float | None
    ) -> None:
        """Raise an open episode's priority: its alarm sounds again at the new priority."""
        ep = replace(self._open[kind], priority=priority, message=message, value=value, limit=limit)
        self._open[kind] = ep
        if ep.alarm_sample is None:
            self._raise(kind)
        else:
            self._updates.append(EpisodeUpdate(ALARM, ep, self._now))

    def _revise(self, kind: str, message: str, value: float | None = None) -> None:
        ep = self._open.get(kind)
        if ep is None or (ep.message == message and ep.value == value):
            return
        ep = replace(ep, message=message, value=value)
        self._open[kind] = ep
        if ep.alarm_sample is not None:
            self._updates.append(EpisodeUpdate(UPDATE, ep, self._now))

    def _close(self, kind: str, offset: int) -> None:
        ep = self._open.pop(kind, None)
        if ep is None:
            return
        ep = replace(ep, offset_sample=int(max(offset, ep.onset_sample)))
        self._closed.append(ep)
        self._last_closed[kind] = ep
        self._updates.append(EpisodeUpdate(OFFSET, ep, self._now))
        if ep.alarm_sample is not None:
            hold_until = ep.alarm_sample + self._sec(self.settings.alarm_hold_s)
            self._pending_clear[kind] = (hold_until, ep)
            if self._now >= hold_until:
                self._emit_clear(kind)

    def _emit_clear(self, kind: str) -> None:
        _, ep = self._pending_clear.pop(kind)
        self._updates.append(EpisodeUpdate(CLEAR, ep, self._now))

    def _event(
        self,
        kind: str,
        onset: int,
        offset: int,
        message: str,
        value: float | None = None,
        limit: float | None = None,
    ) -> None:
        if kind in self._open:
            self._close(kind, onset)
        self._open_episode(kind, onset, message, value=value, limit=limit)
        self._close(kind, offset)
