"""The PyInstaller spec and the Debian bits, checked without building.

The spec's constants and helper functions are read with `ast` and run here, so
these tests see exactly what PyInstaller would.
"""

from __future__ import annotations

import ast
import configparser
import fnmatch
import importlib.util
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "vigil.spec"


def _spec_namespace() -> dict:
    """The spec's module-level constants and helper functions (not its build calls)."""
    tree = ast.parse(SPEC.read_text())
    keep = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        or (
            isinstance(node, ast.Assign)
            and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)
            and "SPECPATH" not in ast.unparse(node)
        )
    ]
    namespace: dict = {"fnmatch": fnmatch, "os": os, "re": re, "Path": Path}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(SPEC), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def spec() -> dict:
    return _spec_namespace()


def test_spec_bundles_the_resources_folder() -> None:
    text = SPEC.read_text()
    assert '(str(ROOT / "resources"), "resources")' in text
    # app/ward.py finds them at sys._MEIPASS/resources in the frozen app.
    assert 'Path(frozen_root) / "resources"' in (ROOT / "app" / "ward.py").read_text()
    for needed in ("demo/ward.toml", "demo/ATTRIBUTION.md", "demo/119.hea", "demo/119.atr"):
        assert (ROOT / "resources" / needed).is_file(), needed
    assert (ROOT / "resources" / "models").is_dir()


def test_spec_collects_every_vigil_package(spec: dict) -> None:
    assert set(spec["VIGIL_PACKAGES"]) == {"app", "devices", "inference", "explain"}
    for package in spec["VIGIL_PACKAGES"]:
        assert (ROOT / package / "__init__.py").is_file(), package


@pytest.mark.parametrize(
    "module",
    [
        "torch",
        "captum.attr",
        "wfdb",
        "scipy.signal",
        "safetensors.torch",
        "sqlite_utils",
        "platformdirs",
        "bleak.backends.bluezdbus.client",
        "dbus_fast",
        "PySide6.QtOpenGL",
        "PySide6.QtOpenGLWidgets",
        "matplotlib.backends.backend_agg",
    ],
)
def test_lazy_imports_are_listed(spec: dict, module: str) -> None:
    assert module in spec["LAZY_IMPORTS"]


def test_every_listed_lazy_import_exists() -> None:
    # A typo in the list would only show as a PyInstaller warning; here it fails.
    names = _spec_namespace()["LAZY_IMPORTS"]
    top_levels = {n.split(".")[0] for n in names}
    missing = [n for n in sorted(top_levels) if importlib.util.find_spec(n) is None]
    assert missing == []


def test_nothing_vigil_needs_is_excluded(spec: dict) -> None:
    excluded = set(spec["EXCLUDED_MODULES"])
    for module in spec["LAZY_IMPORTS"]:
        parts = module.split(".")
        prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
        assert not prefixes & excluded, module
    # `import torch` itself imports parts of torch.testing._internal (measured: fake_pg,
    # logging_tensor); only its operator databases may go.
    assert "torch.testing._internal" not in excluded
    assert "torch.testing._internal.distributed" not in excluded
    for must_go in ("tkinter", "pytest", "PyQt5", "PyQt6", "PySide2", "aiohttp"):
        assert must_go in excluded


@pytest.mark.parametrize(
    ("dest", "dropped"),
    [
        ("torch/bin/torch_shm_manager", False),  # `import torch` needs it (FIELD-NOTES)
        ("torch/bin/test_api", True),
        ("torch/bin/TCPStoreTest", True),
        ("torch/bin/protoc-3.13.0.0", True),
        ("torch/lib/libtorch_cpu.so", False),
        ("torch/lib/libtorchbind_test.so", True),
        ("torch/include/ATen/ATen.h", True),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", False),
        ("PySide6/Qt/plugins/platforms/libqwayland.so", False),
        ("PySide6/Qt/plugins/platforms/libqeglfs.so", True),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", True),
        ("PySide6/Qt/plugins/imageformats/libqsvg.so", False),
        ("PySide6/Qt/plugins/imageformats/libqtiff.so", True),
        ("PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so", False),
        ("PySide6/Qt/lib/libQt6OpenGL.so.6", False),
        ("PySide6/Qt/translations/qtbase_de.qm", True),
        ("matplotlib/mpl-data/fonts/ttf/DejaVuSans.ttf", False),
        ("matplotlib/mpl-data/sample_data/goog.npz", True),
        ("matplotlib/mpl-data/fonts/ttf/STIXGeneral.ttf", True),
        ("matplotlib/mpl-data/fonts/ttf/DejaVuSans-Bold.ttf", False),
        ("resources/demo/119.dat", False),
        ("resources/models/beats.safetensors", False),
    ],
)
def test_dropped_files(spec: dict, dest: str, dropped: bool) -> None:
    assert spec["_dropped"](dest) is dropped


@pytest.mark.parametrize(
    ("src", "system"),
    [
        ("/lib/x86_64-linux-gnu/libstdc++.so.6", True),
        ("/usr/lib/x86_64-linux-gnu/libxcb-icccm.so.4", True),
        ("/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", False),
        ("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", False),
        ("/work/main/.venv/lib/python3.11/site-packages/torch/lib/libgomp.so.1", False),
        ("/work/main/.venv/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_.so", False),
    ],
)
def test_system_libraries_are_left_to_debian(spec: dict, src: str, system: bool) -> None:
    assert spec["_is_system_library"](src) is system


def test_torch_ships_bytecode_but_keeps_the_sources_it_reads(spec: dict) -> None:
    modes = spec["_torch_collection_mode"]()
    assert modes["torch"] == "pyz"
    # Without these sources `import torch.utils.data` aborts (config modules parse
    # themselves) or every start warns (TorchScript overload checks): measured here.
    for module in ("torch._dynamo.config", "torch.distributed.config", "torch.nn.functional"):
        assert modes[module] == "pyz+py", module
    assert len(modes) < 40


def test_desktop_entry() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(PACKAGING / "vigil.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert desktop["Exec"].split()[0] == "vigil"
    assert desktop["Icon"] == "vigil"
    assert desktop["Terminal"] == "false"
    assert desktop["Categories"].endswith(";")


def test_icon_is_a_square_svg() -> None:
    root = ET.parse(PACKAGING / "vigil.svg").getroot()
    assert root.tag.endswith("svg")
    _x, _y, width, height = (float(v) for v in root.attrib["viewBox"].split())
    assert width == height


def test_control_template_has_every_placeholder_build_sh_fills() -> None:
    control = (PACKAGING / "debian" / "control.in").read_text()
    build = (PACKAGING / "build.sh").read_text()
    for placeholder in ("@VERSION@", "@INSTALLED_SIZE_KB@", "@DEPENDS@"):
        assert placeholder in control
        assert placeholder in build
    fields = dict(
        line.split(": ", 1) for line in control.splitlines() if line and not line.startswith(" ")
    )
    assert fields["Package"] == "vigil"
    assert fields["Architecture"] == "amd64"


def test_build_script_parses() -> None:
    result = subprocess.run(
        ["bash", "-n", str(PACKAGING / "build.sh")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_build_script_pins_pyinstaller() -> None:
    build = (PACKAGING / "build.sh").read_text()
    assert 'PYINSTALLER_PIN="pyinstaller==6.22.3"' in build
