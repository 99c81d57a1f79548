"""Render packaging/vigil.svg to PNG icons of the hicolor sizes (used by build.sh).

Usage: ``python packaging/render_icon.py OUT_DIR`` writes OUT_DIR/<N>x<N>/apps/vigil.png.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SIZES_PX = (48, 128, 256)
SVG = Path(__file__).resolve().parent / "vigil.svg"


def render(out_dir: Path) -> list[Path]:
    """Write one PNG per size under ``out_dir`` and return their paths."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtCore, QtGui, QtSvg  # noqa: PLC0415

    _app = QtGui.QGuiApplication.instance() or QtGui.QGuiApplication(["render-icon"])
    renderer = QtSvg.QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise ValueError(f"{SVG}: not a valid SVG")
    written = []
    for size in SIZES_PX:
        image = QtGui.QImage(size, size, QtGui.QImage.Format.Format_ARGB32)
        image.fill(QtCore.Qt.GlobalColor.transparent)
        painter = QtGui.QPainter(image)
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        target = out_dir / f"{size}x{size}" / "apps" / "vigil.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(target)):
            raise OSError(f"cannot write {target}")
        written.append(target)
    return written


if __name__ == "__main__":
    for path in render(Path(sys.argv[1])):
        sys.stdout.write(f"{path}\n")
