"""Shared test set-up: offscreen Qt and a check that no test leaves threads behind."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
DEMO = ROOT / "resources" / "demo"


@pytest.fixture(autouse=True)
def no_dangling_threads():
    """Fail a test that leaves a thread running (napari/superqt discipline)."""
    before = {t.ident for t in threading.enumerate()}
    yield
    deadline = time.monotonic() + 3.0
    while True:
        extra = [
            t
            for t in threading.enumerate()
            if t.ident not in before and t.is_alive() and not t.name.startswith(("QDBus", "Dummy-"))
        ]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not extra, f"threads left running: {[t.name for t in extra]}"


@pytest.fixture(scope="session")
def one_torch_thread():
    """Run torch on one thread, as the inference and explain threads do (two
    oversubscribe a busy 2-core box); requested by the modules that use torch."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def demo_dir() -> Path:
    """The bundled demo recordings."""
    return DEMO
