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
    assert stats["fps"]["median"] >= 10
    assert stats["samples"]["received"] > 8 * 125 * 2
    assert stats["samples"]["dropped"] == 0
    assert stats["peak_rss_mb"] > 0 and stats["cpu_s"] > 0
    assert stats["beds_failed"] == []


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
