"""The run report's figures, as PNG files: convergence, ensemble weights, feature importance, and a
confusion matrix (classification) or residuals (regression) on the held-out split.

Each function takes plain data and a path, so the figures are testable without a pipeline run.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Most important features shown; the rest are summed in no bar (the JSON report has them all).
TOP_FEATURES = 20
# Permutation importance (the fallback) stays cheap: few rows, and only for tables this narrow.
PERMUTATION_ROWS, PERMUTATION_COLUMNS = 300, 40


def _figure(width: float = 6.4, height: float = 4.0) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and in CI
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def convergence(trials: Sequence[dict[str, Any]], metric: str, greater_is_better: bool, path: Path) -> Path:
    """Every finished trial's CV score over the search's seconds, and the best so far as a step line."""
    done = sorted((t for t in trials if t.get("score") is not None), key=lambda t: t["finished"])
    fig, ax = _figure()
    if done:
        start = min(t["started"] for t in trials)
        seconds = [t["finished"] - start for t in done]
        scores = [t["score"] for t in done]
        best = np.maximum.accumulate(scores) if greater_is_better else np.minimum.accumulate(scores)
        ax.scatter(seconds, scores, s=12, alpha=0.5, label="trial")
        ax.step(seconds, best, where="post", color="C3", label="best so far")
        ax.legend()
    ax.set_xlabel("seconds since the search started")
    ax.set_ylabel(f"CV {metric}")
    ax.set_title("Search convergence")
    return _save(fig, path)


def pareto(trials: Sequence[dict[str, Any]], front: Sequence[dict[str, Any]], metric: str, path: Path) -> Path:
    """Every finished trial's CV score against its prediction latency per row (log scale), the
    Pareto front of score, latency and size marked, each point's area its model size."""
    done = [t for t in trials if t.get("score") is not None and t.get("latency_ms") is not None]
    fig, ax = _figure()
    on = {p["trial"] for p in front}
    for group, colour, label in ((False, "C0", "trial"), (True, "C3", "Pareto front (score, latency, size)")):
        points = [t for t in done if (t["trial"] in on) == group]
        if points:
            ax.scatter([t["latency_ms"] for t in points], [t["score"] for t in points],
                       s=[12 + 40 * min(t.get("model_mb") or 0.0, 5.0) for t in points], color=colour, alpha=0.6,
                       label=label)
    ax.set_xscale("log")
    ax.set_xlabel("ms per row (fold models on their validation rows)")
    ax.set_ylabel(f"CV {metric}")
    ax.set_title("Score against latency (point area: model size)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def ensemble_weights(members: Sequence[dict[str, Any]], path: Path) -> Path:
    """One bar per member (`#trial family`), its weight in the ensemble."""
    fig, ax = _figure()
    labels = [f"#{m['trial']} {m['family']}" for m in members]
    ax.barh(labels[::-1], [m["weight"] for m in members][::-1])
    ax.set_xlabel("weight")
    ax.set_title("Ensemble members")
    return _save(fig, path)


def importance(names: Sequence[str], values: Sequence[float], source: str, path: Path) -> Path:
    """The TOP_FEATURES most important features of `source` (a member), largest on top."""
    order = np.argsort(-np.asarray(values, dtype=float), kind="stable")[:TOP_FEATURES]
    fig, ax = _figure(height=max(3.0, 0.25 * len(order) + 1))
    ax.barh([str(names[i]) for i in order][::-1], [float(values[i]) for i in order][::-1])
    ax.set_xlabel("importance")
    ax.set_title(f"Feature importance ({source})")
    return _save(fig, path)


def confusion(y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any], path: Path) -> Path:
    """Counts of true (rows) against predicted (columns) classes on the held-out split."""
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=int)
    for truth, guess in zip(y_true, y_pred, strict=True):
        counts[index[truth], index[guess]] += 1
    fig, ax = _figure(width=4.8, height=4.4)
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), [str(label) for label in labels], rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), [str(label) for label in labels])
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > counts.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test split)")
    return _save(fig, path)


def residuals(y_true: Sequence[float], y_pred: Sequence[float], path: Path) -> Path:
    """Residuals (true - predicted) against predictions on the held-out split."""
    truth, guess = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    fig, ax = _figure()
    ax.scatter(guess, truth - guess, s=10, alpha=0.5)
    ax.axhline(0.0, color="C3")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true - predicted")
    ax.set_title("Residuals (test split)")
    return _save(fig, path)


def member_importance(members: Sequence[Any], labels: Sequence[str]) -> tuple[list[str], np.ndarray, str] | None:
    """Feature names and importances of the first member (heaviest first) whose model has them:
    impurity importances of trees, or absolute coefficients of linear models; None if none has."""
    for member, label in zip(members, labels, strict=True):
        pipeline = member.models[0] if hasattr(member, "models") else member
        estimator = pipeline.steps[-1][1]
        estimator = getattr(estimator, "regressor_", estimator)
        values = getattr(estimator, "feature_importances_", None)
        if values is None and getattr(estimator, "coef_", None) is not None:
            coef = np.abs(np.atleast_2d(estimator.coef_))
            values = coef.mean(axis=0)
        if values is None:
            continue
        names = [str(n) for n in pipeline[:-1].get_feature_names_out()]
        if len(names) == len(values):
            return names, np.asarray(values, dtype=float), label
    return None


def permutation_importance(model: Any, X: Any, y: np.ndarray, metric: Any, task: str,
                           seed: int) -> tuple[list[str], np.ndarray]:
    """How much the metric worsens when one raw column is shuffled (on at most PERMUTATION_ROWS rows):
    for ensembles whose members report no importances of their own (HistGradientBoosting, k-NN)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(X))[:PERMUTATION_ROWS]
    X, y = X.iloc[rows].reset_index(drop=True), y[rows]

    frames = [X]
    for column in X.columns:
        shuffled = X.copy()
        shuffled[column] = X[column].to_numpy()[rng.permutation(len(X))]
        frames.append(shuffled)
    # One prediction of all the shuffled copies: an ensemble of bagged forests pays its per-call
    # cost once, not once per column (diamonds_cut at 300 s: 11.5 s of a 28 s ensemble stage).
    stacked = pd.concat(frames, ignore_index=True)
    out = model.predict(stacked) if task == "regression" else model.predict_proba(stacked)
    losses = [float(metric.loss(y, part)) for part in np.split(np.asarray(out), len(frames))]
    return [str(c) for c in X.columns], np.asarray(losses[1:]) - losses[0]


def permuted_rows(X: Any) -> int:
    """Rows the permutation importance predicts for test rows `X` (0: too wide for it)."""
    return (X.shape[1] + 1) * min(PERMUTATION_ROWS, len(X)) if X.shape[1] <= PERMUTATION_COLUMNS else 0


def draw_run(folder: Path, trials: Sequence[dict[str, Any]], members: Sequence[dict[str, Any]],
             fitted: Sequence[Any], metric: Any, task: str, classes: Sequence[Any],
             y_test: np.ndarray, test_pred: np.ndarray, model: Any = None, X_test: Any = None,
             seed: int = 0) -> list[Path]:
    """Every figure of one pipeline run, written into `folder`."""
    drawn = [convergence(trials, metric.name, metric.greater_is_better, folder / "convergence.png"),
             ensemble_weights(members, folder / "ensemble_weights.png")]
    labels = [f"#{m['trial']} {m['family']}" for m in members]
    found = member_importance(fitted, labels)
    if found is None and model is not None and X_test is not None and permuted_rows(X_test):
        names, values = permutation_importance(model, X_test, y_test, metric, task, seed)
        found = (names, values, "the ensemble, by permutation on the test split")
    if found is not None:
        drawn.append(importance(*found[:2], found[2], folder / "feature_importance.png"))
    if task == "regression":
        drawn.append(residuals(y_test, test_pred, folder / "residuals.png"))
    else:
        drawn.append(confusion([classes[i] for i in y_test], [classes[i] for i in np.argmax(test_pred, axis=1)],
                               classes, folder / "confusion_matrix.png"))
    return drawn
