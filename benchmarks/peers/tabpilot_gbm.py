"""tabpilot searching every family, LightGBM and CatBoost included (`search.families`: all of
`tabpilot.core.config.FAMILIES`): the evidence for making them default families (issue 19). Everything
else is the tabpilot adapter's."""
from __future__ import annotations

import sys

from peers import tabpilot

if __name__ == "__main__":
    from tabpilot.core.config import FAMILIES

    tabpilot.BENCH_SETTINGS |= {"search__families": list(FAMILIES)}
    sys.exit(tabpilot.main("tabpilot_gbm", tabpilot.fit_predict, tabpilot.PACKAGES))
