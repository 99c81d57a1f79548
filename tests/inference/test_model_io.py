"""Safetensors model files: round trip and every way a bad file is refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from inference.model_io import (
    ModelFileError,
    check_tensor_shapes,
    file_sha256,
    load_model_file,
    save_model_file,
)

FORMAT = "vigil-test"


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"conv.weight": rng.normal(size=(4, 2, 3)), "head.bias": rng.normal(size=5)}


def _save(path: Path, version: int = 1, tensors: dict | None = None) -> str:
    return save_model_file(
        path,
        _tensors() if tensors is None else tensors,
        {"classes": "N,S,V,F,Q", "trained_utc": "2026-01-01T00:00:00Z"},
        format_name=FORMAT,
        format_version=version,
    )


def test_round_trip_keeps_tensors_metadata_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    sha = _save(path)
    mf = load_model_file(path, format_name=FORMAT, format_version=1, required_metadata=("classes",))
    assert mf.sha256 == sha == file_sha256(path)
    assert mf.metadata["classes"] == "N,S,V,F,Q"
    for name, arr in _tensors().items():
        np.testing.assert_array_equal(mf.tensors[name], arr.astype(np.float32))
    check_tensor_shapes(mf, {"conv.weight": (4, 2, 3), "head.bias": (5,)})


def test_pickle_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(pickle.dumps(_tensors()))
    with pytest.raises(ModelFileError, match=r"m\.safetensors: not a safetensors file"):
        load_model_file(path, format_name=FORMAT, format_version=1)


@pytest.mark.parametrize("cut", [3, 40, -7])
def test_truncated_or_garbled_file_is_refused(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "m.safetensors"
    _save(path)
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut > 0 else data[:cut] + b"\x00" * 3)
    with pytest.raises(ModelFileError, match="not a safetensors file or it is corrupt"):
        load_model_file(path, format_name=FORMAT, format_version=1)


def test_header_length_past_end_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes((10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model_file(path, format_name=FORMAT, format_version=1)


def test_wrong_version_and_format_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _save(path, version=2)
    with pytest.raises(ModelFileError, match="format version '2'.*reads version 1"):
        load_model_file(path, format_name=FORMAT, format_version=1)
    with pytest.raises(ModelFileError, match="format is 'vigil-test', expected 'other'"):
        load_model_file(path, format_name="other", format_version=2)


def test_missing_metadata_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _save(path)
    with pytest.raises(ModelFileError, match="metadata lacks architecture"):
        load_model_file(
            path, format_name=FORMAT, format_version=1, required_metadata=("architecture",)
        )


def test_missing_extra_and_misshaped_tensors_are_named(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _save(path)
    mf = load_model_file(path, format_name=FORMAT, format_version=1)
    with pytest.raises(ModelFileError, match="missing tensor.*head.weight"):
        check_tensor_shapes(
            mf, {"conv.weight": (4, 2, 3), "head.bias": (5,), "head.weight": (5, 8)}
        )
    with pytest.raises(ModelFileError, match=r"unexpected tensor.*head\.bias"):
        check_tensor_shapes(mf, {"conv.weight": (4, 2, 3)})
    with pytest.raises(ModelFileError, match=r"head\.bias has shape \(5,\).*needs \(6,\)"):
        check_tensor_shapes(mf, {"conv.weight": (4, 2, 3), "head.bias": (6,)})


def test_non_finite_weights_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    bad = _tensors()
    bad["head.bias"][2] = np.nan
    _save(path, tensors=bad)
    with pytest.raises(ModelFileError, match="head.bias holds NaN"):
        load_model_file(path, format_name=FORMAT, format_version=1)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="nothere.safetensors: no such file"):
        load_model_file(tmp_path / "nothere.safetensors", format_name=FORMAT, format_version=1)
