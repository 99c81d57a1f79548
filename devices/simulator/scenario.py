"""Simulator scenarios: which virtual wearables exist and what goes wrong when.

A scenario is a small TOML file::

    name = "strap drops out"
    seed = 7

    [[device]]
    kind = "chest_strap"          # chest_strap | pulse_oximeter | thermometer | bp_cuff
    name = "Polar H10 1A2B3C4D"   # optional; a default name per kind otherwise
    address = "C0:DE:00:01:00:01" # optional; deterministic per kind and position otherwise
    record = "101"                # WFDB record (ECG) or BIDMC numerics (oximeter);
                                  # resolved as given, under resources/demo, or $VIGIL_DATA_DIR
    record_start_s = 0
    hr_bpm = 72                   # synthetic rhythm when there is no record
    mtu = 232                     # notifications are cut to MTU - 3 bytes (23 → 20 bytes)
    clock_drift_ppm = 0           # sensor clock runs fast (+) or slow (-)
    battery_percent = 95
    battery_drain_pct_per_min = 0
    le_abort_connects = 0         # first N Connect calls fail with le-connection-abort-by-local
    malformed_rate = 0.0          # share of notifications replaced by damaged bytes
    period_s = 0                  # measurement period of thermometer / BP cuff / spot-check
    rssi_dbm = -60

    [[device.event]]              # times count from the device's FIRST connection
    at_s = 5.0
    kind = "link_loss"            # link_loss | contact_loss | malformed_storm | battery
    refuse_reconnects = 2         # link_loss: refuse the next N Connect calls
    hidden_s = 1.0                # link_loss: stop advertising this long
    duration_s = 3.0              # contact_loss / malformed_storm: how long
    rate = 1.0                    # malformed_storm: share of damaged notifications
    percent = 5                   # battery: jump to this level

Unknown keys are refused, so a typo does not silently change a test.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

KINDS: Final = ("chest_strap", "pulse_oximeter", "thermometer", "bp_cuff")
ALIASES: Final[dict[str, str]] = {
    "strap": "chest_strap",
    "chest_strap": "chest_strap",
    "ecg": "chest_strap",
    "h10": "chest_strap",
    "oximeter": "pulse_oximeter",
    "pulse_oximeter": "pulse_oximeter",
    "spo2": "pulse_oximeter",
    "thermometer": "thermometer",
    "temp": "thermometer",
    "bp": "bp_cuff",
    "bp_cuff": "bp_cuff",
    "nibp": "bp_cuff",
}
EVENT_KINDS: Final = ("link_loss", "contact_loss", "malformed_storm", "battery")
_DEFAULT_NAMES: Final[dict[str, str]] = {
    "chest_strap": "Polar H10 {n:08X}",
    "pulse_oximeter": "Vigil Oximeter {n:02d}",
    "thermometer": "Vigil Thermometer {n:02d}",
    "bp_cuff": "Vigil BP Cuff {n:02d}",
}


class ScenarioError(ValueError):
    """A scenario file or device list that cannot be used."""


@dataclass(frozen=True, slots=True)
class Event:
    """A scripted fault, ``at_s`` seconds after the device first connected."""

    at_s: float
    kind: str
    refuse_reconnects: int = 0
    hidden_s: float = 0.0
    duration_s: float = 0.0
    rate: float = 1.0
    percent: int = 0


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One virtual wearable and its faults."""

    kind: str
    name: str = ""
    address: str = ""
    record: str | None = None
    record_start_s: float = 0.0
    hr_bpm: float = 72.0
    temp_c: float = 36.9
    systolic_mmhg: float = 122.0
    diastolic_mmhg: float = 78.0
    mtu: int = 232
    clock_drift_ppm: float = 0.0
    battery_percent: int = 95
    battery_drain_pct_per_min: float = 0.0
    le_abort_connects: int = 0
    malformed_rate: float = 0.0
    period_s: float = 0.0
    rssi_dbm: int = -60
    seed: int = 0
    events: tuple[Event, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named set of devices."""

    name: str = "default"
    seed: int = 0
    devices: tuple[DeviceSpec, ...] = field(default_factory=tuple)


def _fill_defaults(specs: list[DeviceSpec]) -> tuple[DeviceSpec, ...]:
    """Give every device a unique name and address, stable for its kind and position."""
    used = {s.address.upper() for s in specs if s.address}
    if len(used) != sum(1 for s in specs if s.address):
        raise ScenarioError("duplicate device addresses in the scenario")
    counters: dict[str, int] = {}
    out = []
    for spec in specs:
        k = KINDS.index(spec.kind) + 1
        n = counters.get(spec.kind, 0) + 1
        address = spec.address.upper()
        if not address:
            while (address := f"C0:DE:00:{k:02X}:{n >> 8:02X}:{n & 0xFF:02X}") in used:
                n += 1
            used.add(address)
        counters[spec.kind] = n
        pattern = _DEFAULT_NAMES[spec.kind]
        name = spec.name or pattern.format(n=0x1A2B3C00 + n if spec.kind == "chest_strap" else n)
        out.append(replace(spec, name=name, address=address, seed=spec.seed or k * 1000 + n))
    return tuple(out)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {sorted(unknown)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def parse_scenario(data: dict[str, Any]) -> Scenario:
    """Build a scenario from parsed TOML."""
    top = dict(data)
    raw_devices = top.pop("device", [])
    name = str(top.pop("name", "default"))
    seed = int(top.pop("seed", 0))
    if top:
        raise ScenarioError(f"scenario: unknown key(s) {sorted(top)}")
    specs = []
    for i, raw in enumerate(raw_devices):
        raw = dict(raw)
        kind = ALIASES.get(str(raw.pop("kind", "")).lower())
        if kind is None:
            raise ScenarioError(f"device {i}: kind must be one of {KINDS}")
        events = []
        for j, ev in enumerate(raw.pop("event", [])):
            event = _build(Event, ev, f"device {i} event {j}")
            if event.kind not in EVENT_KINDS:
                raise ScenarioError(f"device {i} event {j}: kind must be one of {EVENT_KINDS}")
            events.append(event)
        spec = _build(DeviceSpec, {**raw, "kind": kind, "events": tuple(events)}, f"device {i}")
        if spec.mtu < 23:
            raise ScenarioError(f"device {i}: ATT MTU is at least 23, got {spec.mtu}")
        specs.append(spec)
    return Scenario(name=name, seed=seed, devices=_fill_defaults(specs))


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario TOML file."""
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{path}: {exc}") from None
    return parse_scenario(data)


def devices_from_list(text: str) -> tuple[DeviceSpec, ...]:
    """Parse ``--devices``: comma-separated kinds, each optionally ``KIND*N`` or ``KIND=N``.

    Names and addresses are filled in by :func:`merge`.

    ``"strap*2,oximeter,thermometer,bp"`` → two straps, one oximeter, one
    thermometer, one cuff.
    """
    specs: list[DeviceSpec] = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        kind_text, _, count_text = item.replace("=", "*").partition("*")
        kind = ALIASES.get(kind_text.strip().lower())
        if kind is None:
            raise ScenarioError(
                f"--devices: unknown kind {kind_text!r}; use one of {sorted(ALIASES)}"
            )
        try:
            count = int(count_text) if count_text else 1
        except ValueError:
            raise ScenarioError(f"--devices: bad count in {item!r}") from None
        specs.extend(DeviceSpec(kind=kind) for _ in range(count))
    return tuple(specs)


def merge(scenario: Scenario | None, extra: tuple[DeviceSpec, ...]) -> Scenario:
    """A scenario's devices plus any given on the command line."""
    base = scenario or Scenario()
    return replace(base, devices=_fill_defaults([*base.devices, *extra]))
