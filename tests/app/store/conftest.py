"""Helpers for the store tests: real SQLite files in tmp_path, real writer threads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.store import StoreWriter


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    return tmp_path / "vigil.sqlite3"


@pytest.fixture
def writer(store_file: Path) -> Iterator[StoreWriter]:
    """A started writer on a fresh file; stopped after the test."""
    w = StoreWriter(store_file, commit_interval_s=0.2)
    w.start()
    yield w
    w.stop(timeout=2.0)
