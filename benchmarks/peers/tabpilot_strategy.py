"""tabpilot with the search strategy, seed and families of benchmarks/strategies.py (environment
TABPILOT_BENCH_STRATEGY, TABPILOT_BENCH_SEED, TABPILOT_BENCH_FAMILIES: a comma-separated list).
Everything else is the tabpilot adapter's."""
from __future__ import annotations

import os
import sys

from peers import tabpilot

tabpilot.BENCH_SETTINGS |= {"search__strategy": os.environ.get("TABPILOT_BENCH_STRATEGY", "tpe")}
if os.environ.get("TABPILOT_BENCH_FAMILIES"):
    tabpilot.BENCH_SETTINGS |= {"search__families": os.environ["TABPILOT_BENCH_FAMILIES"].split(",")}
tabpilot.BENCH_SEED = int(os.environ.get("TABPILOT_BENCH_SEED", "0"))

if __name__ == "__main__":
    sys.exit(tabpilot.main("tabpilot_strategy", tabpilot.fit_predict, tabpilot.PACKAGES))
