"""Entry point of the frozen Vigil binary (PyInstaller runs this as ``__main__``).

``vigil --bundle-check`` is answered here, before Vigil's own command line: it
checks the installed bundle (see vigil_bundle_check.py) and is meant for IT.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _main() -> int:
    # A frozen binary re-executes itself for multiprocessing children (DataLoader
    # workers in `vigil train`); without this they would start a second app.
    multiprocessing.freeze_support()
    # captum imports pyplot; only Agg is bundled, so pyplot must not probe Qt/Tk backends.
    os.environ.setdefault("MPLBACKEND", "Agg")
    if sys.argv[1:2] == ["--bundle-check"]:
        from vigil_bundle_check import main as bundle_check  # noqa: PLC0415

        return bundle_check()
    from app.cli import main  # noqa: PLC0415 (after freeze_support, as multiprocessing requires)

    return main()


if __name__ == "__main__":
    sys.exit(_main())
