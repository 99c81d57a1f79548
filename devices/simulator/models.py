"""Virtual wearables: what each device advertises, serves and notifies, byte-exactly.

A model knows nothing about D-Bus. The host asks it which notifications are due
(``due(now, subscribed)``), forwards reads and writes to it, and tells it when the
link drops. Every payload is written by :func:`devices.gatt.encode`, so the app's
decoders see exactly what a real sensor sends. Times are wall-clock seconds
(``time.time()``); each model has its own sensor clock that may drift.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np

from devices import gatt
from devices.gatt_pmd import (
    ECG_RESOLUTION_BITS,
    ECG_SAMPLE_RATE_HZ,
    ECG_SETTINGS,
    PMD_CONTROL_POINT,
    PMD_DATA,
    PMD_EPOCH,
    PMD_SERVICE,
    PMD_TYPE_ECG,
    SETTING_RESOLUTION,
    SETTING_SAMPLE_RATE,
    PmdSettings,
)
from devices.simulator.scenario import DeviceSpec
from devices.simulator.signals import ECG_FS_HZ, load_ecg, load_oximetry

U = gatt.full_uuid
HR_MEASUREMENT: Final = U(gatt.HEART_RATE_MEASUREMENT)
BODY_SENSOR_LOCATION: Final = U(0x2A38)
BATTERY_LEVEL: Final = U(gatt.BATTERY_LEVEL)
PLX_CONTINUOUS: Final = U(gatt.PLX_CONTINUOUS)
PLX_SPOT_CHECK: Final = U(gatt.PLX_SPOT_CHECK)
TEMPERATURE: Final = U(gatt.TEMPERATURE_MEASUREMENT)
BLOOD_PRESSURE: Final = U(gatt.BLOOD_PRESSURE_MEASUREMENT)

#: Samples per PMD ECG frame: what an H10 sends at MTU 232 (FIELD-NOTES.md).
ECG_SAMPLES_PER_FRAME: Final = 73
_PMD_EPOCH_UNIX: Final = PMD_EPOCH.timestamp()
#: Polar's Bluetooth SIG company identifier, as advertised in manufacturer data.
POLAR_COMPANY_ID: Final = 0x006B
#: PLX device-and-sensor status bit "sensor unconnected to user".
PLX_SENSOR_UNCONNECTED: Final = 1 << 11
PLX_MEASUREMENT_ONGOING: Final = 1 << 5


@dataclass(frozen=True, slots=True)
class CharSpec:
    """One characteristic: 128-bit UUID and BlueZ flags (``read``, ``notify`` …)."""

    uuid: str
    flags: tuple[str, ...]


class SensorClock:
    """The sensor's own clock: set to wall time at power-on, then drifting."""

    def __init__(self, origin_wall_s: float, drift_ppm: float) -> None:
        self.origin = origin_wall_s
        self.rate = 1.0 + drift_ppm * 1e-6

    def elapsed(self, now: float) -> float:
        """Sensor seconds since power-on."""
        return (now - self.origin) * self.rate

    def wall_at(self, elapsed_s: float) -> float:
        """Wall time at which the sensor will have counted ``elapsed_s``."""
        return self.origin + elapsed_s / self.rate

    def now(self, now: float) -> float:
        """Sensor time as a Unix timestamp."""
        return self.origin + self.elapsed(now)


class Periodic:
    """A value sent every ``period_s`` of sensor time while subscribed."""

    def __init__(
        self, char: str, period_s: float, produce: Callable[[float], bytes | None]
    ) -> None:
        self.char = char
        self.period_s = period_s
        self.produce = produce
        self.next_elapsed = period_s


class Wearable:
    """Base of all virtual wearables; subclasses fill in services and streams."""

    kind: str = "wearable"
    appearance: int = 0

    def __init__(self, spec: DeviceSpec, now: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.address = spec.address
        self.clock = SensorClock(now, spec.clock_drift_ppm)
        self.contact = True
        self.services: dict[str, list[CharSpec]] = {}
        self.periodic: list[Periodic] = []
        self.manufacturer_data: dict[int, bytes] = {}
        self._battery_sent: int | None = None
        self.services[U(gatt.BATTERY_SERVICE)] = [CharSpec(BATTERY_LEVEL, ("read", "notify"))]

    # -- what the host asks -------------------------------------------------

    @property
    def advertised_uuids(self) -> list[str]:
        return list(self.services)

    def battery_percent(self, now: float) -> int:
        minutes = self.clock.elapsed(now) / 60.0
        return max(
            0,
            min(
                100,
                round(self.spec.battery_percent - self.spec.battery_drain_pct_per_min * minutes),
            ),
        )

    def read(self, char: str, now: float) -> bytes:
        if char == BATTERY_LEVEL:
            return gatt.encode(gatt.BatteryLevel(self.battery_percent(now)))
        return b""

    def write(self, char: str, data: bytes, now: float) -> list[tuple[str, bytes]]:
        """Handle a write; return indications to send after the write response."""
        return []

    def due(self, now: float, subscribed: set[str]) -> list[tuple[str, bytes]]:
        """Notifications whose time has come, in order."""
        out: list[tuple[str, bytes]] = []
        elapsed = self.clock.elapsed(now)
        for p in self.periodic:
            if p.char not in subscribed:
                p.next_elapsed = max(p.next_elapsed, elapsed)
                continue
            while p.next_elapsed <= elapsed:
                payload = p.produce(self.clock.wall_at(p.next_elapsed))
                p.next_elapsed += p.period_s
                if payload is not None:
                    out.append((p.char, payload))
        if BATTERY_LEVEL in subscribed:
            level = self.battery_percent(now)
            if level != self._battery_sent:
                self._battery_sent = level
                out.append((BATTERY_LEVEL, gatt.encode(gatt.BatteryLevel(level))))
        return out

    def next_due(self, now: float, subscribed: set[str]) -> float:
        """Wall time of the next notification (at most 1 s ahead, for battery changes)."""
        nxt = now + 1.0
        for p in self.periodic:
            if p.char in subscribed:
                nxt = min(nxt, self.clock.wall_at(p.next_elapsed))
        return nxt

    def on_link_down(self) -> None:
        """The connection ended: forget subscriptions' state."""
        self._battery_sent = None


class ChestStrap(Wearable):
    """A Polar-H10-like strap: HR + RR (0x2A37), battery, PMD ECG at 130 Hz."""

    kind = "chest_strap"
    appearance = 0x0341  # heart rate sensor: belt

    def __init__(self, spec: DeviceSpec, now: float) -> None:
        super().__init__(spec, now)
        self.ecg = load_ecg(spec.record, spec.record_start_s, hr_bpm=spec.hr_bpm, seed=spec.seed)
        self.services = {
            U(gatt.HEART_RATE_SERVICE): [
                CharSpec(HR_MEASUREMENT, ("notify",)),
                CharSpec(BODY_SENSOR_LOCATION, ("read",)),
            ],
            **self.services,
            PMD_SERVICE: [
                CharSpec(PMD_CONTROL_POINT, ("read", "write", "indicate")),
                CharSpec(PMD_DATA, ("notify",)),
            ],
        }
        self.manufacturer_data = {POLAR_COMPANY_ID: bytes([0x33, 0x1E, 0x00])}
        self.periodic.append(Periodic(HR_MEASUREMENT, 1.0, self._heart_rate))
        self.ecg_running = False
        self._ecg_next_index = 0
        self._last_rr = 60.0 / spec.hr_bpm

    def read(self, char: str, now: float) -> bytes:
        if char == BODY_SENSOR_LOCATION:
            return bytes([1])  # chest
        if char == PMD_CONTROL_POINT:
            return gatt.encode(gatt.PmdFeatures(frozenset({PMD_TYPE_ECG})))
        return super().read(char, now)

    def _heart_rate(self, at: float) -> bytes:
        t1 = self.clock.elapsed(at)
        if not self.contact:
            return gatt.encode(gatt.HeartRateMeasurement(0, False, None, ()))
        beats = self.ecg.beats_between(t1 - 1.0, t1)
        rr: list[float] = []
        prev = self.ecg.beat_before(t1 - 1.0)
        for b in beats:
            if prev is not None:
                rr.append(round((b - prev) * 1024) / 1024)
            prev = float(b)
        if rr:
            self._last_rr = float(np.mean(rr))
        bpm = round(60.0 / self._last_rr) if self._last_rr > 0 else 0
        return gatt.encode(gatt.HeartRateMeasurement(min(bpm, 255), True, None, tuple(rr)))

    def write(self, char: str, data: bytes, now: float) -> list[tuple[str, bytes]]:
        if char != PMD_CONTROL_POINT:
            return []
        try:
            req = gatt.decode(PMD_CONTROL_POINT, data)
        except gatt.GattDecodeError:
            op = data[0] if data else 0
            resp = gatt.PmdControlResponse(
                op, data[1] if len(data) > 1 else 0, gatt.PmdStatus.INVALID_OP_CODE, 0
            )
            return [(PMD_CONTROL_POINT, gatt.encode(resp))]
        status = gatt.PmdStatus.SUCCESS
        settings: PmdSettings = ()
        op = 0
        if isinstance(req, gatt.PmdGetSettings):
            op = 1
            if req.measurement_type == PMD_TYPE_ECG:
                settings = ECG_SETTINGS
            else:
                status = gatt.PmdStatus.NOT_SUPPORTED
        elif isinstance(req, gatt.PmdStartMeasurement):
            op = 2
            if req.measurement_type != PMD_TYPE_ECG:
                status = gatt.PmdStatus.NOT_SUPPORTED
            elif req.setting(SETTING_SAMPLE_RATE) != (ECG_SAMPLE_RATE_HZ,):
                status = gatt.PmdStatus.INVALID_SAMPLE_RATE
            elif req.setting(SETTING_RESOLUTION) != (ECG_RESOLUTION_BITS,):
                status = gatt.PmdStatus.INVALID_RESOLUTION
            elif self.ecg_running:
                status = gatt.PmdStatus.ALREADY_IN_STATE
            else:
                self.ecg_running = True
                # Samples are anchored to the sensor clock, so a restart after a
                # drop continues "now": the samples in between are simply lost.
                self._ecg_next_index = math.floor(self.clock.elapsed(now) * ECG_FS_HZ)
        elif isinstance(req, gatt.PmdStopMeasurement):
            op = 3
            if req.measurement_type != PMD_TYPE_ECG:
                status = gatt.PmdStatus.NOT_SUPPORTED
            elif not self.ecg_running:
                status = gatt.PmdStatus.ALREADY_IN_STATE
            self.ecg_running = False
        else:
            status = gatt.PmdStatus.INVALID_OP_CODE
        measurement_type = getattr(req, "measurement_type", 0)
        resp = gatt.PmdControlResponse(op, measurement_type, status, 0, settings)
        return [(PMD_CONTROL_POINT, gatt.encode(resp))]

    def _ecg_frame_end_wall(self) -> float:
        # A frame leaves the sensor as soon as its last sample is measured.
        last = self._ecg_next_index + ECG_SAMPLES_PER_FRAME - 1
        return self.clock.wall_at(last / ECG_FS_HZ)

    def due(self, now: float, subscribed: set[str]) -> list[tuple[str, bytes]]:
        out = super().due(now, subscribed)
        if self.ecg_running and PMD_DATA in subscribed:
            available = math.floor(self.clock.elapsed(now) * ECG_FS_HZ)
            while available >= self._ecg_next_index + ECG_SAMPLES_PER_FRAME - 1:
                first = self._ecg_next_index
                self._ecg_next_index += ECG_SAMPLES_PER_FRAME
                if self.contact:
                    uv = self.ecg.window(first, ECG_SAMPLES_PER_FRAME)
                else:
                    uv = np.zeros(ECG_SAMPLES_PER_FRAME, dtype=np.int32)
                last_elapsed = (first + ECG_SAMPLES_PER_FRAME - 1) / ECG_FS_HZ
                stamp_ns = round((self.clock.origin + last_elapsed - _PMD_EPOCH_UNIX) * 1e9)
                frame = gatt.PmdEcgFrame(stamp_ns, tuple(int(v) for v in uv))
                out.append((PMD_DATA, gatt.encode(frame)))
        return out

    def next_due(self, now: float, subscribed: set[str]) -> float:
        nxt = super().next_due(now, subscribed)
        if self.ecg_running and PMD_DATA in subscribed:
            nxt = min(nxt, self._ecg_frame_end_wall())
        return nxt

    def on_link_down(self) -> None:
        super().on_link_down()
        self.ecg_running = False  # an H10 stops PMD streaming when the link drops


class PulseOximeter(Wearable):
    """PLX continuous (0x2A5F, 1 Hz) and spot-check (0x2A5E) with battery."""

    kind = "pulse_oximeter"
    appearance = 0x0C41  # pulse oximeter: fingertip

    def __init__(self, spec: DeviceSpec, now: float) -> None:
        super().__init__(spec, now)
        self.source = load_oximetry(spec.record, spec.hr_bpm, spec.seed)
        self.services = {
            U(gatt.PULSE_OXIMETER_SERVICE): [
                CharSpec(PLX_SPOT_CHECK, ("indicate",)),
                CharSpec(PLX_CONTINUOUS, ("notify",)),
            ],
            **self.services,
        }
        self.periodic.append(Periodic(PLX_CONTINUOUS, 1.0, self._continuous))
        self.periodic.append(Periodic(PLX_SPOT_CHECK, spec.period_s or 30.0, self._spot))

    def _reading(self, at: float) -> tuple[float, float, int]:
        if not self.contact:
            return math.nan, math.nan, PLX_SENSOR_UNCONNECTED
        spo2, pulse = self.source.at(self.clock.elapsed(at) + self.spec.record_start_s)
        return spo2, pulse, 0

    def _continuous(self, at: float) -> bytes:
        spo2, pulse, device = self._reading(at)
        return gatt.encode(
            gatt.PlxContinuous(
                spo2, pulse, measurement_status=PLX_MEASUREMENT_ONGOING, device_status=device
            )
        )

    def _spot(self, at: float) -> bytes:
        spo2, pulse, device = self._reading(at)
        stamp = datetime.fromtimestamp(self.clock.now(at)).replace(microsecond=0)
        return gatt.encode(gatt.PlxSpotCheck(spo2, pulse, stamp, device_status=device))


class Thermometer(Wearable):
    """Health Thermometer: Temperature Measurement (0x2A1C) indicated every period."""

    kind = "thermometer"
    appearance = 0x0301  # thermometer: ear (closest generic)

    def __init__(self, spec: DeviceSpec, now: float) -> None:
        super().__init__(spec, now)
        self.services = {
            U(gatt.HEALTH_THERMOMETER_SERVICE): [CharSpec(TEMPERATURE, ("indicate",))],
            **self.services,
        }
        self.periodic.append(Periodic(TEMPERATURE, spec.period_s or 5.0, self._temperature))

    def _temperature(self, at: float) -> bytes | None:
        if not self.contact:
            return None
        minutes = self.clock.elapsed(at) / 60.0
        celsius = round(spec_temp(self.spec.temp_c, minutes), 2)
        stamp = datetime.fromtimestamp(self.clock.now(at)).replace(microsecond=0)
        return gatt.encode(gatt.TemperatureMeasurement(celsius, stamp, 1))


def spec_temp(base_c: float, minutes: float) -> float:
    """A slow, small oscillation around the patient's temperature."""
    return base_c + 0.15 * math.sin(minutes / 7.0)


class BpCuff(Wearable):
    """Blood Pressure Measurement (0x2A35) indicated once per measurement cycle."""

    kind = "bp_cuff"
    appearance = 0x0381  # blood pressure: arm

    def __init__(self, spec: DeviceSpec, now: float) -> None:
        super().__init__(spec, now)
        self.services = {
            U(gatt.BLOOD_PRESSURE_SERVICE): [CharSpec(BLOOD_PRESSURE, ("indicate",))],
            **self.services,
        }
        self.periodic.append(Periodic(BLOOD_PRESSURE, spec.period_s or 15.0, self._pressure))
        self._rng = np.random.default_rng(spec.seed)

    def _pressure(self, at: float) -> bytes | None:
        if not self.contact:
            return None
        sys_ = float(round(self.spec.systolic_mmhg + 4 * self._rng.standard_normal()))
        dia = float(round(self.spec.diastolic_mmhg + 3 * self._rng.standard_normal()))
        mean = round(dia + (sys_ - dia) / 3.0, 1)
        stamp = datetime.fromtimestamp(self.clock.now(at)).replace(microsecond=0)
        return gatt.encode(
            gatt.BloodPressureMeasurement(sys_, dia, mean, stamp, float(self.spec.hr_bpm), 1, 0)
        )


MODELS: Final[dict[str, type[Wearable]]] = {
    m.kind: m for m in (ChestStrap, PulseOximeter, Thermometer, BpCuff)
}


def make_wearable(spec: DeviceSpec, now: float) -> Wearable:
    """Build the model a :class:`DeviceSpec` names."""
    return MODELS[spec.kind](spec, now)
