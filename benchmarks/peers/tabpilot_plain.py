"""tabpilot with feature construction and selection switched off (`features.construct: false`,
`features.select: false`): the "off" column of the feature-engineering on/off table. Everything
else is the tabpilot adapter's."""
from __future__ import annotations

import sys

from peers import tabpilot

tabpilot.BENCH_SETTINGS |= {"features__construct": False, "features__select": False}

if __name__ == "__main__":
    sys.exit(tabpilot.main("tabpilot_plain", tabpilot.fit_predict, tabpilot.PACKAGES))
