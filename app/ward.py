"""The ward definition: which beds exist and what feeds each of them.

A ward file is TOML::

    title = "Demo ward (replay)"
    [[bed]]
    label = "Bed 1"
    patient = "R. Alvarez"
    patient_id = "mitdb-101"
    record = "101"          # relative to the ward file, or absolute

The built-in demo ward lives in ``resources/demo/ward.toml``.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: Most beds a ward view lays out; central stations show 8–16, 32 is the stress case.
MAX_BEDS: Final = 32


def resources_dir() -> Path:
    """Where Vigil's bundled resources are, from a source tree or a frozen app."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def demo_ward_path() -> Path:
    """The bundled demo ward file."""
    return resources_dir() / "demo" / "ward.toml"


class WardConfigError(ValueError):
    """A ward file is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class BedConfig:
    """One bed of the ward.

    ``record`` is a path to a recording to replay, or empty for a bed fed by
    wearables.
    """

    bed_id: str
    label: str
    patient: str
    patient_id: str
    record: str = ""
    devices: tuple[str, ...] = ()

    @property
    def wearable(self) -> bool:
        """True for a bed fed by Bluetooth wearables rather than a recording."""
        return not self.record


@dataclass(frozen=True)
class WardConfig:
    """A ward: a title and its beds in display order."""

    title: str
    beds: tuple[BedConfig, ...]


def load_ward(path: str | Path) -> WardConfig:
    """Read a ward file; raises :class:`WardConfigError` naming the file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise WardConfigError(f"{p}: cannot read ward file: {exc}") from exc
    beds_raw = data.get("bed", [])
    if not isinstance(beds_raw, list) or not beds_raw:
        raise WardConfigError(f"{p}: no [[bed]] entries")
    beds = []
    for i, raw in enumerate(beds_raw, start=1):
        if not isinstance(raw, dict):
            raise WardConfigError(f"{p}: bed {i} is not a table")
        record = str(raw.get("record", ""))
        if record and not Path(record).is_absolute():
            record = str(p.parent / record)
        beds.append(
            BedConfig(
                bed_id=f"bed{i}",
                label=str(raw.get("label", f"Bed {i}")),
                patient=str(raw.get("patient", "")),
                patient_id=str(raw.get("patient_id", "")),
                record=record,
                devices=tuple(str(d).upper() for d in raw.get("devices", ())),
            )
        )
    return WardConfig(str(data.get("title", p.stem)), tuple(beds))


def with_wearable_beds(ward: WardConfig, n_beds: int) -> WardConfig:
    """``ward`` plus ``n_beds`` empty beds for Bluetooth wearables."""
    start = len(ward.beds)
    extra = tuple(
        BedConfig(f"bed{start + i + 1}", f"Bed {start + i + 1}", "(wearables)", "", "")
        for i in range(n_beds)
    )
    if start + n_beds > MAX_BEDS:
        raise WardConfigError(f"at most {MAX_BEDS} beds, asked for {start + n_beds}")
    return WardConfig(ward.title, ward.beds + extra)


def replicate_ward(ward: WardConfig, n_beds: int) -> WardConfig:
    """A ward of ``n_beds`` beds cycling through ``ward``'s recordings (benchmarks, stress)."""
    if not 1 <= n_beds <= MAX_BEDS:
        raise WardConfigError(f"bed count must be 1..{MAX_BEDS}, got {n_beds}")
    beds = []
    for i in range(n_beds):
        src = ward.beds[i % len(ward.beds)]
        beds.append(
            BedConfig(f"bed{i + 1}", f"Bed {i + 1}", src.patient, src.patient_id, src.record)
        )
    return WardConfig(ward.title, tuple(beds))
