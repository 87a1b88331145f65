"""Dataset meta-features: a short numeric description of a training table, for finding similar ones."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tabpilot.data.preprocessing import PreprocessPlan

NAMES = ("log_rows", "log_features", "share_categorical", "share_text_or_date", "share_missing",
         "log_classes", "minority_share", "log_mean_levels")


def compute(X: pd.DataFrame, y: np.ndarray, task: str, plan: PreprocessPlan) -> dict[str, float]:
    """Meta-features of a training table; every value is on a scale of about 0 to 5."""
    n_features = max(len(X.columns), 1)
    categorical = plan.of_role("categorical")
    levels = [plan.columns[c].levels for c in categorical]
    if task == "regression":
        log_classes, minority = 0.0, 1.0
    else:
        counts = np.bincount(np.asarray(y, dtype=int))
        log_classes, minority = math.log2(len(counts)), float(counts.min() / counts.sum())
    return {
        "log_rows": math.log10(max(len(X), 1)),
        "log_features": math.log10(n_features),
        "share_categorical": len(categorical) / n_features,
        "share_text_or_date": len(plan.of_role("text", "datetime")) / n_features,
        "share_missing": float(X.isna().to_numpy().mean()) if len(X) else 0.0,
        "log_classes": log_classes,
        "minority_share": minority,
        "log_mean_levels": math.log10(1 + float(np.mean(levels))) if levels else 0.0,
    }


def distance(a: dict[str, float], b: dict[str, float]) -> float:
    return float(math.sqrt(sum((a[k] - b.get(k, 0.0)) ** 2 for k in NAMES)))
