"""``python -m devices.simulator``: the same as ``vigil simulate``."""

import sys

from devices.simulator import main

sys.exit(main())
