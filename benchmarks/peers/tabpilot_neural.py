"""tabpilot with the neural families searched beside the default ones (`search.families`: the
defaults plus torch_mlp and torch_darts): how often a neural member enters the ensemble, and what
the suite's rank is with them (issue 21). Everything else is the tabpilot adapter's."""
from __future__ import annotations

import sys

from peers import tabpilot
from tabpilot.core.config import DEFAULT_FAMILIES

tabpilot.BENCH_SETTINGS |= {"search__families": [*DEFAULT_FAMILIES, "torch_mlp", "torch_darts"]}

if __name__ == "__main__":
    sys.exit(tabpilot.main("tabpilot_neural", tabpilot.fit_predict, tabpilot.PACKAGES))
