"""`vigil run` headless and screenshot modes as a user (or CI, or IT) runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _vigil(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_headless_demo_writes_stats(tmp_path: Path) -> None:
    stats_path = tmp_path / "stats.json"
    proc = _vigil(
        "run",
        "--demo",
        "--headless",
        "--seconds",
        "4",
        "--stats-json",
        str(stats_path),
        "--data-dir",
        str(tmp_path / "data"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads(stats_path.read_text())
    assert stats["beds"] == 8
    assert stats["seconds"] >= 4
    assert stats["fps"]["median"] > 0  # frames were drawn; speed is bench/render.py's job
    assert stats["samples"]["received"] > 8 * 125 * 2
    assert stats["samples"]["dropped"] == 0
    assert stats["peak_rss_mb"] > 0 and stats["cpu_s"] > 0
    assert stats["beds_failed"] == []
    assert stats["samples"]["stored"] == stats["samples"]["received"]


def test_a_stored_session_reads_back_sample_exact(tmp_path: Path) -> None:
    from app.store import StoreReader, store_path
    from devices.recording import load_recording

    proc = _vigil(
        "run",
        "--record",
        str(ROOT / "resources/demo/119"),
        "--headless",
        "--seconds",
        "3",
        "--data-dir",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    recording = load_recording(ROOT / "resources/demo/119")
    with StoreReader(store_path(tmp_path)) as reader:
        (session,) = reader.sessions()
        for stream in ("ecg", "ecg2"):
            first, samples = reader.read_samples(session.id, stream)
            assert first == 0 and len(samples) > 360 * 2
            expected = recording.streams[stream].samples[: len(samples)]
            assert samples.tobytes() == expected.tobytes()


def test_an_unusable_store_file_stops_start_up_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "vigil.sqlite3").write_bytes(b"this is not a database" * 100)
    proc = _vigil("run", "--demo", "--headless", "--seconds", "1", "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "vigil.sqlite3" in proc.stderr


def test_screenshot_is_a_png_of_the_window(tmp_path: Path) -> None:
    png = tmp_path / "ward.png"
    proc = _vigil(
        "run", "--demo", "--headless", "--seconds", "2", "--screenshot", str(png), "--no-store"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_a_missing_ward_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = _vigil("run", "--ward", str(tmp_path / "nope.toml"), "--headless", "--seconds", "1")
    assert proc.returncode == 2
    assert "nope.toml" in proc.stderr
