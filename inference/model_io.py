"""Safetensors files of Vigil's models: write, read and check them.

Weights are stored only as safetensors (never pickles, which can run code when
loaded). The header's metadata carries what is needed to rebuild and trust the
model: format version, class list, model rate, window, architecture and the
training facts. Reading checks all of that, plus every tensor's name, shape,
dtype and finiteness against what the architecture expects, and names the file
and the fault when something is wrong.

NumPy only: no torch import here.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

logger = logging.getLogger(__name__)

FORMAT_KEY: Final = "vigil_format"
FORMAT_VERSION_KEY: Final = "vigil_format_version"


class ModelFileError(ValueError):
    """A model file that Vigil refuses to load; the message names the file and the fault."""


@dataclass(frozen=True, slots=True)
class ModelFile:
    """Tensors and metadata read from a checked safetensors file.

    Attributes
    ----------
    path
        Where it was read from.
    tensors
        Name to float32 array.
    metadata
        The header's string metadata.
    sha256
        Hex digest of the whole file.
    """

    path: Path
    tensors: dict[str, np.ndarray]
    metadata: dict[str, str]
    sha256: str


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model_file(
    path: str | Path,
    tensors: Mapping[str, np.ndarray],
    metadata: Mapping[str, str],
    *,
    format_name: str,
    format_version: int,
) -> str:
    """Write tensors and metadata as safetensors; return the file's sha256.

    Parameters
    ----------
    path
        Destination (parent folders are created).
    tensors
        Name to array; stored as contiguous float32.
    metadata
        Extra header strings (values must be ``str``).
    format_name, format_version
        What kind of model file this is; :func:`load_model_file` checks both.
    """
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {str(k): str(v) for k, v in metadata.items()}
    meta[FORMAT_KEY] = format_name
    meta[FORMAT_VERSION_KEY] = str(format_version)
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    save_file(arrays, str(path), metadata=meta)
    return file_sha256(path)


def load_model_file(
    path: str | Path,
    *,
    format_name: str,
    format_version: int,
    required_metadata: tuple[str, ...] = (),
) -> ModelFile:
    """Read a safetensors model file and check its header.

    Parameters
    ----------
    path
        File to read.
    format_name, format_version
        Expected values of the format keys written by :func:`save_model_file`.
    required_metadata
        Header keys that must be present.

    Returns
    -------
    ModelFile

    Raises
    ------
    ModelFileError
        Missing file, not a safetensors file (a pickle, say), no or wrong format
        or version, missing metadata, non-float or non-finite tensors.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_bytes

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path}: no such file")
    data = path.read_bytes()
    try:
        tensors = load_bytes(data)
        metadata = _header_metadata(data)
    except (SafetensorError, ValueError, OverflowError) as exc:
        raise ModelFileError(
            f"model file {path}: not a safetensors file or it is corrupt ({exc})"
        ) from exc
    found = metadata.get(FORMAT_KEY)
    if found != format_name:
        raise ModelFileError(f"model file {path}: format is {found!r}, expected {format_name!r}")
    version = metadata.get(FORMAT_VERSION_KEY)
    if version != str(format_version):
        raise ModelFileError(
            f"model file {path}: format version {version!r}, this Vigil reads "
            f"version {format_version}"
        )
    missing = [k for k in required_metadata if k not in metadata]
    if missing:
        raise ModelFileError(f"model file {path}: metadata lacks {', '.join(missing)}")
    for name, arr in tensors.items():
        if arr.dtype != np.float32:
            raise ModelFileError(f"model file {path}: tensor {name} is {arr.dtype}, not float32")
        if not np.isfinite(arr).all():
            raise ModelFileError(f"model file {path}: tensor {name} holds NaN or infinity")
    digest = hashlib.sha256(data).hexdigest()
    return ModelFile(path, dict(tensors), metadata, digest)


def check_tensor_shapes(model_file: ModelFile, expected: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse a file whose tensor names or shapes differ from ``expected``.

    Raises
    ------
    ModelFileError
        Naming the missing and extra tensors, or the first shape mismatch.
    """
    have = set(model_file.tensors)
    want = set(expected)
    problems = []
    if want - have:
        problems.append("missing tensor(s) " + ", ".join(sorted(want - have)))
    if have - want:
        problems.append("unexpected tensor(s) " + ", ".join(sorted(have - want)))
    if problems:
        raise ModelFileError(f"model file {model_file.path}: " + "; ".join(problems))
    for name in sorted(want):
        got = tuple(model_file.tensors[name].shape)
        if got != tuple(expected[name]):
            raise ModelFileError(
                f"model file {model_file.path}: tensor {name} has shape {got}, "
                f"the architecture needs {tuple(expected[name])}"
            )


def _header_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors header (the format is 8-byte length + JSON)."""
    if len(data) < 8:
        raise ValueError("file shorter than a safetensors header")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise ValueError("header length runs past the end of the file")
    header = json.loads(data[8 : 8 + n])
    meta = header.get("__metadata__", {}) if isinstance(header, dict) else {}
    return {str(k): str(v) for k, v in meta.items()}
