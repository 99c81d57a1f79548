"""`vigil run`: the ward monitor, on screen or headless."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from app.ward import (
    WardConfig,
    WardConfigError,
    demo_ward_path,
    load_ward,
    replicate_ward,
    with_wearable_beds,
)

logger = logging.getLogger(__name__)


def ward_from_args(args: argparse.Namespace) -> WardConfig:
    """The ward `vigil run` monitors: --ward, --record or the demo, sized by --beds."""
    from app.ward import BedConfig  # noqa: PLC0415

    if args.record:
        beds = tuple(
            BedConfig(f"bed{i}", f"Bed {i}", Path(r).name, Path(r).name, str(r))
            for i, r in enumerate(args.record, start=1)
        )
        ward = WardConfig("Replay", beds)
    elif args.ward or args.demo or not args.wearables:
        ward = load_ward(args.ward or demo_ward_path())
    else:  # only wearable beds were asked for
        ward = WardConfig("Wearables", ())
    if args.beds:
        ward = replicate_ward(ward, args.beds)
    if args.wearables:
        ward = with_wearable_beds(ward, args.wearables)
    return ward


def run(args: argparse.Namespace) -> int:
    """Run the ward monitor; returns the process exit code."""
    if args.headless:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from devices.ble_backend import ENV_VAR, BleSpecError, parse_ble_spec  # noqa: PLC0415

    ble_text = args.ble if getattr(args, "ble", None) is not None else os.environ.get(ENV_VAR, "")
    try:
        ble_backend = parse_ble_spec(ble_text)
    except BleSpecError as exc:
        logger.error("cannot start", extra={"error": str(exc)})
        sys.stderr.write(f"vigil: --ble / ${ENV_VAR}: {exc}\n")
        return 2
    try:
        ward = ward_from_args(args)
        width, height = (int(v) for v in str(args.size).lower().split("x"))
    except (WardConfigError, ValueError) as exc:
        logger.error("cannot start", extra={"error": str(exc)})
        sys.stderr.write(f"vigil: {exc}\n")
        return 2
    t0 = time.monotonic()
    from PySide6 import QtCore, QtWidgets  # noqa: PLC0415

    from app.main import RunOptions, Vigil  # noqa: PLC0415
    from app.ui.main_window import MainWindow  # noqa: PLC0415

    options = RunOptions(
        ward=ward,
        data_dir=args.data_dir,
        speed=args.speed,
        store=not args.no_store,
        analysis=not args.no_analysis,
        audio=not (args.headless or args.mute),
        ble=bool(args.wearables),
        ble_backend=str(ble_backend),
        auto_assign=args.auto_assign,
        model_path=args.model,
        headless=args.headless,
        seconds=args.seconds,
        stats_json=args.stats_json,
        screenshot=args.screenshot,
        frame_rate_hz=args.fps,
        window_size=(width, height),
    )
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["vigil"])
    app.setApplicationName("Vigil")
    try:
        vigil = Vigil(options)
    except Exception as exc:  # a store that cannot open is a start-up failure with a reason
        logger.exception("cannot start")
        sys.stderr.write(f"vigil: cannot start: {exc}\n")
        return 2
    window = MainWindow(
        ward.title, list(vigil.beds.values()), clinical=vigil.clinical, frame_rate_hz=args.fps
    )
    window.resize(width, height)
    window.show()
    startup_s = time.monotonic() - t0
    logger.info("window shown", extra={"startup_s": round(startup_s, 3), "beds": len(vigil.beds)})
    try:
        vigil.start()
    except Exception as exc:  # e.g. StoreError naming an unusable store file
        logger.exception("cannot start")
        sys.stderr.write(f"vigil: cannot start: {exc}\n")
        vigil.stop()
        window.close()
        return 2
    window.bed_view.ble = vigil.ble
    if vigil.explainer is not None:
        window.attach_review(vigil.explainer, vigil.submit_review)
    t_start = time.monotonic()
    gui_cpu_start = time.thread_time()
    if args.seconds is not None:
        QtCore.QTimer.singleShot(int(args.seconds * 1000), app.quit)
    code = 0
    try:
        app.exec()
    finally:
        t_end = time.monotonic()
        gui_cpu_s = time.thread_time() - gui_cpu_start
        if args.screenshot:
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            if not window.grab().save(str(args.screenshot)):
                sys.stderr.write(f"vigil: cannot write screenshot {args.screenshot}\n")
                code = 1
        window.close()
        vigil.stop()
        if args.stats_json:
            stats = vigil.stats(window.frames.per_second(t_start, t_end))
            stats["startup_s"] = round(startup_s, 3)
            # The GUI thread does all drawing: its CPU over wall time is the render share.
            stats["gui_cpu_s"] = round(gui_cpu_s, 3)
            stats["gui_cpu_share"] = round(gui_cpu_s / max(t_end - t_start, 1e-9), 3)
            args.stats_json.parent.mkdir(parents=True, exist_ok=True)
            args.stats_json.write_text(json.dumps(stats, indent=2))
    return code
