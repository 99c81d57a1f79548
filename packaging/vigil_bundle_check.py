"""`vigil --bundle-check`: prove that a frozen Vigil holds every component it loads lazily.

The ward view starts without torch, captum or bleak, so a missing piece of the
bundle would only show when a clinician first opens an explanation.  This check
loads each lazily imported component the way Vigil uses it (a 1-D CNN forward,
backward and optimiser step, Captum attributions, safetensors, WFDB, SciPy
filters, SQLite, the BlueZ backend of bleak, Qt offscreen with pyqtgraph) and
prints one JSON object.  It writes only to a temporary folder, which it removes.

Exit status: 0 when every check passed, 1 otherwise (the failing check's
traceback goes to stderr).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: The demo record the WFDB check reads (MIT-BIH 119: bigeminy, ships with Vigil).
DEMO_RECORD = "119"


def _resources() -> dict[str, Any]:
    from app.ward import demo_ward_path, resources_dir  # noqa: PLC0415

    root = resources_dir()
    missing = [
        str(p)
        for p in (demo_ward_path(), root / "demo" / "ATTRIBUTION.md", root / "demo" / "119.hea")
        if not p.is_file()
    ]
    if missing:
        raise FileNotFoundError(f"bundled resources missing: {missing}")
    models = sorted(p.name for p in (root / "models").glob("*.safetensors"))
    return {"resources": str(root), "models": models}


def _wfdb_and_scipy() -> dict[str, Any]:
    import numpy as np  # noqa: PLC0415
    import wfdb  # noqa: PLC0415
    from scipy import signal  # noqa: PLC0415

    from app.ward import resources_dir  # noqa: PLC0415

    path = str(resources_dir() / "demo" / DEMO_RECORD)
    record = wfdb.rdrecord(path, sampto=3600)
    ann = wfdb.rdann(path, "atr", sampto=3600)
    b, a = signal.butter(2, [0.5, 40.0], btype="bandpass", fs=record.fs)
    filtered = signal.filtfilt(b, a, record.p_signal[:, 0])
    if not np.isfinite(filtered).all() or len(ann.sample) == 0:
        raise ValueError("WFDB read or SciPy filter gave no usable result")
    return {"fs": record.fs, "beats": len(ann.sample)}


def _tiny_cnn():  # noqa: ANN202 (torch is imported lazily)
    import torch  # noqa: PLC0415

    return torch.nn.Sequential(
        torch.nn.Conv1d(1, 4, 7, padding=3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool1d(8),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 5),
    )


def _torch_and_safetensors(tmp: Path) -> dict[str, Any]:
    import torch  # noqa: PLC0415
    from safetensors.torch import load_file, save_file  # noqa: PLC0415

    from app.ward import resources_dir  # noqa: PLC0415

    torch.set_num_threads(1)
    model = _tiny_cnn()
    beats = torch.randn(16, 1, 256)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = torch.nn.functional.cross_entropy(model(beats), torch.randint(0, 5, (16,)))
    loss.backward()
    optimiser.step()  # the optimiser path imports torch._dynamo and sympy
    save_file(model.state_dict(), str(tmp / "tiny.safetensors"))
    restored = _tiny_cnn()
    restored.load_state_dict(load_file(str(tmp / "tiny.safetensors")))
    tensors = 0
    for weights in sorted((resources_dir() / "models").glob("*.safetensors")):
        tensors += len(load_file(str(weights)))
    return {"torch": torch.__version__, "bundled_model_tensors": tensors}


def _captum() -> dict[str, Any]:
    import matplotlib  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from captum.attr import DeepLift, IntegratedGradients, Occlusion  # noqa: PLC0415

    model = _tiny_cnn().eval()
    beat = torch.randn(1, 1, 256, requires_grad=True)
    baseline = torch.zeros_like(beat)
    ig = IntegratedGradients(model).attribute(beat, baseline, target=0, n_steps=8)
    dl = DeepLift(model).attribute(beat, baseline, target=0)
    occ = Occlusion(model).attribute(beat, sliding_window_shapes=(1, 16), strides=(1, 16), target=0)
    if not all(torch.isfinite(t).all() for t in (ig, dl, occ)):
        raise ValueError("attributions are not finite")
    return {"matplotlib_backend": matplotlib.get_backend()}


def _sqlite(tmp: Path) -> dict[str, Any]:
    import sqlite_utils  # noqa: PLC0415

    db = sqlite_utils.Database(tmp / "check.sqlite")
    db["numeric"].insert_all({"bed": f"bed{i}", "hr_bpm": 60 + i} for i in range(8))
    rows = db.execute("select count(*) from numeric").fetchone()[0]
    db.close()
    return {"rows": rows}


def _bluetooth() -> dict[str, Any]:
    import bleak  # noqa: PLC0415
    import bleak_retry_connector  # noqa: F401, PLC0415
    import dbus_fast.aio  # noqa: F401, PLC0415
    from bleak.backends.bluezdbus.client import BleakClientBlueZDBus  # noqa: F401, PLC0415
    from bleak.backends.bluezdbus.scanner import BleakScannerBlueZDBus  # noqa: F401, PLC0415
    from bumble import crypto  # noqa: PLC0415
    from bumble.transport import tcp_client, tcp_server  # noqa: F401, PLC0415

    import devices.ble_bumble  # noqa: F401, PLC0415
    import devices.simulator.bumble_host  # noqa: F401, PLC0415

    # Bumble runs on its built-in primitives when `cryptography` is left out (vigil.spec).
    mac = crypto.aes_cmac(b"\x00" * 16, b"\x01" * 16)
    return {"backend": bleak.backends.bluezdbus.client.__name__, "bumble_cmac_bytes": len(mac)}


def _qt() -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np  # noqa: PLC0415
    import pyqtgraph as pg  # noqa: PLC0415
    from PySide6 import QtWidgets  # noqa: PLC0415

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["vigil-bundle-check"])
    plot = pg.PlotWidget()
    curve = plot.plot()
    for shift in range(3):
        curve.setData(np.sin(np.linspace(0, 6.3, 720) + shift), skipFiniteCheck=True)
        app.processEvents()
    plot.resize(320, 200)
    image = plot.grab().toImage()
    if image.isNull():
        raise RuntimeError("Qt could not render the plot offscreen")
    platform = app.platformName()
    plot.close()
    opengl_loaded = "PySide6.QtOpenGL" in sys.modules or "PySide6.QtOpenGLWidgets" in sys.modules
    return {
        "platform": platform,
        "qt_opengl_importable": _importable("PySide6.QtOpenGL"),
        "qt_opengl_loaded": opengl_loaded,
    }


def _importable(name: str) -> bool:
    import importlib  # noqa: PLC0415

    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def run_checks() -> dict[str, Any]:
    """Run every check; returns ``{"ok": bool, "checks": [...]}`` (never raises)."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vigil-bundle-check-") as tmp_name:
        tmp = Path(tmp_name)
        checks: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("resources", _resources),
            ("wfdb_scipy", _wfdb_and_scipy),
            ("torch_safetensors", lambda: _torch_and_safetensors(tmp)),
            ("captum", _captum),
            ("sqlite", lambda: _sqlite(tmp)),
            ("bluetooth", _bluetooth),
            ("qt", _qt),
        ]
        for name, check in checks:
            t0 = time.perf_counter()
            try:
                detail = check()
                ok = True
            except Exception as exc:  # every failure is reported, then the next check runs
                traceback.print_exc(file=sys.stderr)
                detail = {"error": f"{type(exc).__name__}: {exc}"}
                ok = False
            results.append(
                {"check": name, "ok": ok, "seconds": round(time.perf_counter() - t0, 3), **detail}
            )
    return {
        "ok": all(r["ok"] for r in results),
        "frozen": bool(getattr(sys, "frozen", False)),
        "checks": results,
    }


def main() -> int:
    """Print the check report as JSON; exit status 0 when all passed."""
    report = run_checks()
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
