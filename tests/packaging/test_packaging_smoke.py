"""The smoke test's own logic: its log scanner, help parsing and install-folder watch.

The frozen build itself is exercised by `bash packaging/build.sh` (CI with
VIGIL_CI_PACKAGE=1), not here: it takes minutes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "packaging" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


smoke = _load("smoke_test")


@pytest.mark.parametrize(
    "line",
    [
        "Traceback (most recent call last):",
        "ImportError: libQt6OpenGL.so.6: cannot open shared object file",
        "ModuleNotFoundError: No module named 'captum'",
        "Fatal Python error: none_dealloc: deallocating None",
    ],
)
def test_scanner_flags_each_marker(line: str) -> None:
    log = f'{{"level": "INFO", "msg": "window shown"}}\n{line}\nexit\n'
    assert smoke.scan_output(log) == [line]


def test_scanner_flags_a_traceback_inside_a_json_log_line() -> None:
    # Vigil logs exceptions as one JSON line with the traceback escaped in "exc".
    record = {
        "level": "ERROR",
        "msg": "cannot start",
        "exc": "Traceback (most recent call last):\n  ...",
    }
    line = json.dumps(record)
    assert smoke.scan_output(line) == [line]


def test_scanner_passes_a_clean_run() -> None:
    log = "\n".join(
        json.dumps({"level": "INFO", "msg": m})
        for m in ("window shown", "bed source state", "store closed")
    )
    assert smoke.scan_output(log) == []


def test_help_parsing_finds_subcommands_of_the_real_cli() -> None:
    from app.cli import build_parser

    help_text = build_parser().format_help()
    assert smoke.lists_subcommand(help_text, "run")
    assert not smoke.lists_subcommand(help_text, "no-such-command")


def test_help_parsing_reads_argparse_choice_lists() -> None:
    help_text = "usage: vigil [-h] {run,analyze,evaluate} ...\n\npositional arguments:\n  {run,analyze,evaluate}\n"
    assert smoke.lists_subcommand(help_text, "analyze")
    assert not smoke.lists_subcommand(help_text, "analyz")


def test_install_folder_watch_sees_new_changed_and_removed_files(tmp_path: Path) -> None:
    (tmp_path / "_internal").mkdir()
    (tmp_path / "vigil").write_bytes(b"\x7fELF")
    (tmp_path / "_internal" / "base_library.zip").write_bytes(b"zip")
    before = smoke.tree_snapshot(tmp_path)
    assert smoke.tree_changes(before, smoke.tree_snapshot(tmp_path)) == []

    (tmp_path / "_internal" / "__pycache__").mkdir()  # what a Python writing bytecode would do
    (tmp_path / "_internal" / "base_library.zip").write_bytes(b"zip, changed")
    os.utime(tmp_path / "_internal" / "base_library.zip", ns=(1, 1))
    (tmp_path / "vigil").unlink()
    changes = smoke.tree_changes(before, smoke.tree_snapshot(tmp_path))
    assert "+_internal/__pycache__" in changes
    assert "~_internal/base_library.zip" in changes
    assert "-vigil" in changes


def test_disk_usage_counts_hard_links_once(tmp_path: Path) -> None:
    blob = tmp_path / "libtorch_cpu.so"
    blob.write_bytes(b"\0" * (2 * 2**20))
    os.link(blob, tmp_path / "again.so")
    assert 1.9 <= smoke.disk_usage_mb(tmp_path) <= 2.2


def test_missing_build_is_reported_not_crashed(tmp_path: Path, capsys) -> None:
    assert smoke.main(["--dist", str(tmp_path / "nowhere")]) == 2
    assert "build first" in capsys.readouterr().err
