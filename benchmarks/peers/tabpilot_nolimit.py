"""tabpilot without a prediction-latency limit (`ensemble.max_predict_ms` and `max_batch_ms`: null):
what the default limits cost in accuracy, table by table. Everything else is the tabpilot adapter's."""
from __future__ import annotations

import sys

from peers import tabpilot

tabpilot.BENCH_SETTINGS |= {"ensemble__max_predict_ms": None, "ensemble__max_batch_ms": None}

if __name__ == "__main__":
    sys.exit(tabpilot.main("tabpilot_nolimit", tabpilot.fit_predict, tabpilot.PACKAGES))
