"""Guard against the PySide6/pyqtgraph refcount abort (FIELD-NOTES: 6.12.0 + 0.14.0).

The abort kills the interpreter, so the loop runs in a child process and the
test checks its exit status and output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import numpy as np
    from PySide6 import QtWidgets
    import pyqtgraph as pg
    app = QtWidgets.QApplication([])
    w = pg.PlotWidget(); c = w.plot(); w.show()
    x = np.arange(2160, dtype=float)
    for i in range(400):
        y = np.sin(x / 50 + i); y[i % 2000 : i % 2000 + 90] = np.nan
        c.setData(x, y, connect="finite")
        app.processEvents()
    print("survived")
    """
)


def test_hundreds_of_setdata_calls_do_not_abort() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120
    )
    assert "Fatal Python error" not in proc.stderr
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "survived" in proc.stdout
