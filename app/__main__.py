"""`python -m app` runs Vigil, like the `vigil` console script."""

import sys

from app.cli import main

sys.exit(main())
