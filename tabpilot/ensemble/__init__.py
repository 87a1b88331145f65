"""Ensembles of the search's trials: selection, the served model, its compiled inference, latency.

The old module `tabpilot.ensemble` of 0.2 held `EnsembleModel` and `FoldBag`; a model pickled by it
asks this package for them (tabpilot/old_paths.py).
"""
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "EnsembleModel":
        from tabpilot.ensemble.model import EnsembleModel

        return EnsembleModel
    if name == "FoldBag":
        from tabpilot.search.fold_bag import FoldBag

        return FoldBag
    raise AttributeError(f"module 'tabpilot.ensemble' has no attribute '{name}'")
