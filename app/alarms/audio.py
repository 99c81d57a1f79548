"""Alarm sound output: a burst scheduler and a playback device with a null fallback.

Playback library: ``miniaudio`` (MIT; the PyPI wheel is 0.6 MB and bundles the
miniaudio C library, which loads PulseAudio/ALSA/CoreAudio/WASAPI at run time,
so no system package is needed).  Weighed against the alternatives:

- QtMultimedia: in the PySide6-Addons wheel (~157 MB installed, FIELD-NOTES.md)
  only for this; and it would put audio on Qt's objects, which this layer avoids.
- sounddevice: needs the system PortAudio library on Linux (not in the wheel).
- simpleaudio: source-only on PyPI for Python 3.11 (needs a compiler and ALSA
  headers) and unmaintained.
- pygame: a 14 MB wheel with SDL for a beep.

Threads: samples are produced on miniaudio's own audio thread (a native thread
that calls :meth:`BurstScheduler.frames`); :meth:`AudioOut.set_sounding` and
:meth:`AudioOut.play_once` only set state under a short lock, so the GUI and the
alarm manager never wait for audio.  With no sound device (CI, a server), or
without miniaudio, :class:`AudioOut` logs one warning and plays nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Generator, Sequence
from typing import Final, Protocol

import numpy as np

from app.alarms.tones import DEFAULT_SAMPLE_RATE_HZ, render_burst, tone_spec
from inference.conditions import Priority

logger = logging.getLogger(__name__)

#: Fade applied when a burst is cut short (acknowledged, or a higher priority arrives).
CUT_FADE_S: Final = 0.010
#: Silence after a cut or a one-shot burst before the next burst may start.
GAP_AFTER_CUT_S: Final = 0.25
#: Device period: short enough that an acknowledge silences within ~50 ms.
DEVICE_BUFFER_MS: Final = 20


class AudioSink(Protocol):
    """What the alarm manager drives; thread-safe and non-blocking."""

    def set_sounding(self, priority: Priority) -> None:
        """Repeat bursts of ``priority`` (``Priority.NONE``: silence)."""

    def play_once(self, priority: Priority) -> None:
        """Play one burst of ``priority`` (reminder signal)."""


class BurstScheduler:
    """Turns "what should sound" into a continuous stream of samples.

    Bursts of the wanted priority repeat with their IEC interburst interval.  A
    change of the wanted priority cuts the burst that is playing (with a short
    fade) and starts the new one after a brief gap; an escalation also cuts the
    interburst silence.  One-shot bursts (reminders) play when nothing else is.

    :meth:`frames` is called on the audio thread only; the setters on any thread.
    """

    def __init__(self, sample_rate: int = DEFAULT_SAMPLE_RATE_HZ, volume: float = 1.0) -> None:
        self.sample_rate = sample_rate
        self.volume = volume
        self._bursts = {
            p: render_burst(p, sample_rate) for p in (Priority.HIGH, Priority.MEDIUM, Priority.LOW)
        }
        self._lock = threading.Lock()
        self._wanted = Priority.NONE
        self._once: deque[Priority] = deque(maxlen=4)
        # Play-head state, touched only by frames().
        self._buf: np.ndarray | None = None
        self._buf_priority = Priority.NONE
        self._continuous = False
        self._pos = 0
        self._silence_left = 0
        self._silence_priority = Priority.NONE
        self.frames_rendered = 0
        self.bursts_started = 0

    def set_sounding(self, priority: Priority) -> None:
        """Repeat bursts of ``priority``; ``Priority.NONE`` stops them (any thread)."""
        with self._lock:
            self._wanted = Priority(priority)

    def play_once(self, priority: Priority) -> None:
        """Queue one burst of ``priority`` (any thread)."""
        if Priority(priority) is not Priority.NONE:
            with self._lock:
                self._once.append(Priority(priority))

    @property
    def wanted(self) -> Priority:
        """The priority currently asked for."""
        with self._lock:
            return self._wanted

    @property
    def queued_once(self) -> tuple[Priority, ...]:
        """One-shot bursts waiting to play."""
        with self._lock:
            return tuple(self._once)

    def frames(self, n: int) -> np.ndarray:
        """The next ``n`` float32 samples (audio thread)."""
        out = np.zeros(n, dtype=np.float32)
        with self._lock:
            wanted = self._wanted
            once_waiting = bool(self._once)
        i = 0
        while i < n:
            if self._buf is not None:
                if self._continuous and wanted is not self._buf_priority:
                    i = self._cut(out, i, wanted)
                    continue
                take = min(n - i, len(self._buf) - self._pos)
                out[i : i + take] = self._buf[self._pos : self._pos + take]
                self._pos += take
                i += take
                if self._pos >= len(self._buf):
                    self._finish_burst()
                continue
            if self._silence_left > 0:
                if wanted > self._silence_priority or once_waiting:
                    self._silence_left = 0
                else:
                    take = min(n - i, self._silence_left)
                    self._silence_left -= take
                    i += take
                    continue
            with self._lock:
                one_shot = self._once.popleft() if self._once else None
            once_waiting = False
            if one_shot is not None:
                self._start(one_shot, continuous=False)
            elif wanted is not Priority.NONE:
                self._start(wanted, continuous=True)
            else:
                break
        self.frames_rendered += n
        if self.volume != 1.0:
            out *= self.volume
        return out

    def _start(self, priority: Priority, *, continuous: bool) -> None:
        self._buf, self._pos = self._bursts[priority], 0
        self._buf_priority, self._continuous = priority, continuous
        self.bursts_started += 1

    def _finish_burst(self) -> None:
        interburst = tone_spec(self._buf_priority).interburst_s if self._continuous else None
        gap_s = interburst if interburst is not None else GAP_AFTER_CUT_S
        self._silence_left = round(gap_s * self.sample_rate)
        self._silence_priority = self._buf_priority if self._continuous else Priority.NONE
        self._buf = None

    def _cut(self, out: np.ndarray, i: int, wanted: Priority) -> int:
        assert self._buf is not None
        fade = min(round(CUT_FADE_S * self.sample_rate), len(self._buf) - self._pos, len(out) - i)
        ramp = np.linspace(1.0, 0.0, fade, dtype=np.float32)
        out[i : i + fade] = self._buf[self._pos : self._pos + fade] * ramp
        self._buf = None
        # A short gap separates the cut burst from the next; only a further
        # escalation beyond ``wanted`` may shorten it.
        self._silence_left = round(GAP_AFTER_CUT_S * self.sample_rate)
        self._silence_priority = wanted
        return i + fade


class AudioOut:
    """Plays alarm bursts on the default sound device, or nothing if there is none.

    Parameters
    ----------
    sample_rate
        Output rate in Hz.
    volume
        Linear gain 0-1 applied to the bursts (which peak at 0.5).
    backends
        miniaudio backend names to try, e.g. ``("pulseaudio", "alsa")`` or
        ``("null",)`` (a device that discards samples in real time, for tests);
        None tries the platform's defaults.

    Notes
    -----
    Call :meth:`start` once at start-up and :meth:`close` at shutdown.  It never
    raises for a missing device or library: it logs one warning and stays silent
    (``available`` is then False).
    """

    def __init__(
        self,
        *,
        sample_rate: int = DEFAULT_SAMPLE_RATE_HZ,
        volume: float = 0.8,
        backends: Sequence[str] | None = None,
    ) -> None:
        self.scheduler = BurstScheduler(sample_rate, volume)
        self._backends = tuple(backends) if backends else None
        self._device = None
        self.backend = "none"
        self._warned = False

    @property
    def available(self) -> bool:
        """True when a sound device is open and playing."""
        return self._device is not None

    def start(self) -> bool:
        """Open the device and start streaming; returns :attr:`available`."""
        if self._device is not None:
            return True
        try:
            import miniaudio
        except ImportError as exc:
            self._warn_once(f"miniaudio is not installed ({exc})")
            return False
        try:
            kwargs = {}
            if self._backends:
                kwargs["backends"] = [miniaudio.Backend[b.upper()] for b in self._backends]
            device = miniaudio.PlaybackDevice(
                output_format=miniaudio.SampleFormat.FLOAT32,
                nchannels=1,
                sample_rate=self.scheduler.sample_rate,
                buffersize_msec=DEVICE_BUFFER_MS,
                app_name="Vigil",
                **kwargs,
            )
            stream = self._stream()
            next(stream)
            device.start(stream)
        except (miniaudio.MiniaudioError, KeyError, OSError) as exc:
            self._warn_once(f"no sound device ({exc})")
            return False
        self._device = device
        self.backend = device.backend
        logger.info("alarm audio on %s at %d Hz", self.backend, self.scheduler.sample_rate)
        return True

    def set_sounding(self, priority: Priority) -> None:
        """Repeat bursts of ``priority`` (``Priority.NONE``: silence); any thread, never blocks."""
        self.scheduler.set_sounding(priority)

    def play_once(self, priority: Priority) -> None:
        """Play one burst of ``priority``; any thread, never blocks."""
        self.scheduler.play_once(priority)

    def close(self) -> None:
        """Stop playback and release the device (idempotent)."""
        device, self._device = self._device, None
        if device is not None:
            device.close()

    def _stream(self) -> Generator[bytes, int, None]:
        # Runs on miniaudio's audio thread.  An exception here would silently stop
        # the device, so it is logged and replaced by silence instead.
        n = yield b""
        while True:
            try:
                block = self.scheduler.frames(n)
            except Exception:  # the alarm sound must keep going
                logger.exception("alarm audio: failed to render samples")
                block = np.zeros(n, dtype=np.float32)
            n = yield block.tobytes()

    def _warn_once(self, why: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("alarm audio disabled: %s; alarms are visual only", why)
