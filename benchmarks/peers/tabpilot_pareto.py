"""tabpilot with `search.objective: pareto` (the front of CV score, latency per row and model size,
benchmarks/pareto.py draws it). Everything else is the tabpilot adapter's."""
from __future__ import annotations

import sys

from peers import tabpilot

tabpilot.BENCH_SETTINGS |= {"search__objective": "pareto"}

if __name__ == "__main__":
    sys.exit(tabpilot.main("tabpilot_pareto", tabpilot.fit_predict, tabpilot.PACKAGES))
