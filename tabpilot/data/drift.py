"""Data drift: a profile of the training data, and the population stability index (PSI) of a new
batch against it, per feature and for the target.

The profile is plain JSON (quantile bin edges and shares for numbers, level shares for categories,
the missing share for both), stored with every registered model, so a later batch is compared with
the data its champion learned from without keeping that data.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# Shares are floored at this before taking logs: an empty bin must not make the index infinite.
EPSILON = 1e-4
MAX_LEVELS = 30
OTHER = "__other__"
MISSING = "__missing__"


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def profile(frame: pd.DataFrame, bins: int = 10) -> dict[str, Any]:
    """Per column: `kind` numeric (inner quantile `edges`) or categorical (its `levels`), and the
    `shares` of rows in each bin or level, the missing share last."""
    out: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        if _numeric(column):
            finite = column.astype(float).replace([np.inf, -np.inf], np.nan).dropna()
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if len(finite) else []
            entry: dict[str, Any] = {"kind": "numeric", "edges": [float(e) for e in edges]}
        else:
            top = column.dropna().astype(str).value_counts().index[:MAX_LEVELS]
            entry = {"kind": "categorical", "levels": [str(v) for v in top]}
        entry["shares"] = _shares(column, entry).tolist()
        out[str(name)] = entry
    return out


def _shares(column: pd.Series, entry: dict[str, Any]) -> np.ndarray:
    """The share of rows in each bin (or level, then `other`) of `entry`, then the missing share."""
    n = max(len(column), 1)
    present = column.notna() & ~column.isin([np.inf, -np.inf]) if _numeric(column) else column.notna()
    if entry["kind"] == "numeric":
        values = pd.to_numeric(column[present], errors="coerce").dropna().to_numpy(dtype=float)
        counts = np.bincount(np.searchsorted(entry["edges"], values, side="right"),
                             minlength=len(entry["edges"]) + 1).astype(float)
    else:
        values = column[present].astype(str)
        known = values.where(values.isin(entry["levels"]), OTHER)
        counts = known.value_counts().reindex([*entry["levels"], OTHER], fill_value=0).to_numpy(dtype=float)
    return np.append(counts, n - counts.sum()) / n


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: sum of (actual - expected) * ln(actual / expected) over bins."""
    e = np.maximum(np.asarray(expected, dtype=float), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=float), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def compare(reference: dict[str, Any], frame: pd.DataFrame, target: str, warn: float,
            alert: float) -> dict[str, Any]:
    """PSI of every profiled column present in `frame`, each with a status (`stable` below `warn`,
    `shift` below `alert`, else `drift`); the target is reported apart as target drift."""
    def status(value: float) -> str:
        return "stable" if value < warn else ("shift" if value < alert else "drift")

    columns = {}
    for name, entry in reference.items():
        if name not in frame.columns:
            continue
        value = psi(np.asarray(entry["shares"]), _shares(frame[name], entry))
        columns[name] = {"psi": round(value, 4), "status": status(value)}
    target_drift = columns.pop(target, None)
    drifted = sorted(n for n, c in columns.items() if c["status"] == "drift")
    return {"thresholds": {"warn": warn, "alert": alert}, "rows": len(frame), "features": columns,
            "target": target_drift, "drifted_features": drifted,
            "max_feature_psi": max((c["psi"] for c in columns.values()), default=0.0)}
