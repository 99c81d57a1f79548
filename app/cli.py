"""`vigil` command line: run (default), analyze, evaluate, train, explain, simulate, export."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from app import __version__

logger = logging.getLogger("vigil")

SUBCOMMANDS = ("run", "analyze", "evaluate", "train", "explain", "simulate")


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="monitor a ward (default)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--demo", action="store_true", help="the built-in demo ward (default)")
    src.add_argument("--ward", type=Path, help="a ward file (TOML) listing beds and recordings")
    src.add_argument("--record", type=Path, nargs="+", help="replay these recordings, one bed each")
    p.add_argument("--wearables", type=int, default=0, help="add N beds fed by Bluetooth wearables")
    p.add_argument(
        "--ble",
        metavar="SPEC",
        help="bleak backend for wearables: 'platform' (default) or 'bumble:TRANSPORT', "
        "e.g. bumble:tcp-client:127.0.0.1:PORT from `vigil simulate --host bumble` "
        "(default: $VIGIL_BLE)",
    )
    p.add_argument(
        "--auto-assign",
        action="store_true",
        help="give each wearable bed one device of each kind found by a scan (testing)",
    )
    p.add_argument("--beds", type=int, help="number of beds (cycles through the ward's recordings)")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed factor (1 = real time)")
    p.add_argument(
        "--data-dir", type=Path, help="where the SQLite store lives (default: user data dir)"
    )
    p.add_argument("--no-store", action="store_true", help="do not record to the store")
    p.add_argument("--no-analysis", action="store_true", help="no beat analysis (waveforms only)")
    p.add_argument(
        "--model", type=Path, help="beat model (.safetensors); default: the shipped model"
    )
    p.add_argument("--mute", action="store_true", help="no alarm sound (visual alarms only)")
    p.add_argument("--headless", action="store_true", help="run offscreen (tests, CI, IT checks)")
    p.add_argument("--seconds", type=float, help="exit after this many seconds")
    p.add_argument("--stats-json", type=Path, help="write run statistics as JSON on exit")
    p.add_argument("--screenshot", type=Path, help="save a PNG of the window on exit")
    p.add_argument(
        "--fps", type=float, default=30.0, help="waveform frame rate (0 = as fast as possible)"
    )
    p.add_argument("--size", default="1920x1080", help="window size WxH (default 1920x1080)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `vigil`."""
    parser = argparse.ArgumentParser(prog="vigil", description="Vigil clinician workstation")
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command")
    _add_run(sub)
    # The other subcommands parse their own arguments (`vigil analyze --help` …);
    # they are listed here so `vigil --help` names them all.
    for name, text in (
        ("analyze", "detect and classify beats and rhythm events in recordings"),
        ("evaluate", "ANSI/AAMI EC57 beat and episode report"),
        ("explain", "explain the beat nearest a time in a recording"),
        ("train", "train the beat classifier (patient-wise validation, model card)"),
        ("simulate", "virtual BLE wearables: fake BlueZ or Bumble controllers (testers)"),
    ):
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `vigil` and `python -m app`."""
    # captum imports pyplot; with Qt loaded it would otherwise pick a Qt backend.
    os.environ.setdefault("MPLBACKEND", "Agg")
    args_list = list(sys.argv[1:] if argv is None else argv)
    # `vigil --demo` means `vigil run --demo`: run is the default subcommand.
    first = next((a for a in args_list if not a.startswith("--log-level")), None)
    if not args_list or (first not in SUBCOMMANDS and first not in ("-h", "--help", "--version")):
        args_list = ["run", *args_list]
    command = args_list[0] if args_list and args_list[0] in SUBCOMMANDS else None
    if command in ("analyze", "evaluate", "train", "explain", "simulate"):
        return _delegate(command, args_list[1:])
    args = build_parser().parse_args(args_list)
    from app.logs import configure_logging  # noqa: PLC0415

    configure_logging(args.log_level)
    from app.run import run  # noqa: PLC0415 (Qt is imported only when running the UI)

    return run(args)


def _delegate(command: str, rest: list[str]) -> int:
    from app.logs import configure_logging  # noqa: PLC0415

    configure_logging("INFO")
    if command == "train":
        from inference.train import main as train_main  # noqa: PLC0415

        return train_main(rest)
    if command == "explain":
        from explain.cli import main as explain_main  # noqa: PLC0415

        return explain_main(rest)
    if command == "simulate":
        from devices.simulator import main as simulate_main  # noqa: PLC0415

        return simulate_main(rest)
    from app import offline  # noqa: PLC0415

    return offline.main(command, rest)
