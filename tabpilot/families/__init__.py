"""The algorithm families, each declared once in its own module (tabpilot.families.spec says what a
declaration holds). Adding a family: one module here and one line in `_DECLARED`.

The order of `_DECLARED` is the order of `search.families` and of the hyperopt choice over families:
changing it changes which configurations a seed samples.
"""
from __future__ import annotations

from tabpilot.families import catboost, forests, hist_gb, knn, lightgbm, linear, mlp, svm, torch_mlp, xgboost
from tabpilot.families.spec import Context, Dim, Family, Scaled

_DECLARED = (linear.LINEAR, linear.ELASTIC_NET, knn.FAMILY, svm.FAMILY, mlp.FAMILY, forests.RANDOM_FOREST,
             forests.EXTRA_TREES, hist_gb.FAMILY, xgboost.FAMILY, lightgbm.FAMILY, catboost.FAMILY,
             torch_mlp.TORCH_MLP, torch_mlp.TORCH_DARTS)
REGISTRY: dict[str, Family] = {f.name: f for f in _DECLARED}

__all__ = ["REGISTRY", "Context", "Dim", "Family", "Scaled"]
