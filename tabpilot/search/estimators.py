"""The whole candidate Pipeline (preprocess + model) of a configuration; each family's estimator
builder is declared with the family (tabpilot.families).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.pipeline import Pipeline

from tabpilot.core.config import PreprocessConfig
from tabpilot.data.features import PLAIN, FeaturePlan, FeatureSelector
from tabpilot.data.preprocessing import HGB_MAX_LEVELS, PreprocessPlan, build_preprocessor, many_levels
from tabpilot.families import REGISTRY, Context

BUILDERS: dict[str, Callable[[dict[str, Any], Context], Any]] = {name: f.build for name, f in REGISTRY.items()}
# Families that need imputed, scaled, one-hot input; the others take ordinal codes and NaN.
DENSE_FAMILIES = frozenset(name for name, f in REGISTRY.items() if f.dense)


def import_families() -> None:
    """Import every family's estimator classes now (the warm server, whose forks then need none)."""
    for task in ("binary", "regression"):
        for build in BUILDERS.values():
            try:
                build({}, Context(task, 0))
            except KeyError:  # no hyperparameters given: the classes are imported by then
                pass


def make_pipeline(config: dict[str, Any], plan: PreprocessPlan, features: FeaturePlan,
                  pcfg: PreprocessConfig, task: str, seed: int, budget: float | None = None) -> Pipeline:
    """An unfitted Pipeline that takes raw rows, for one configuration {"family": ..., "params": {...},
    "features": {"construct", "keep", "select"}} (no "features": the plain pipeline; "interactions" and
    "columns" fix what the fitted rows would choose). `budget`: the run's time budget (None in
    trial-count mode), for families that bound a fit by the clock."""
    family = config["family"]
    fe = {**PLAIN, **(config.get("features") or {})}
    style = "dense" if family in DENSE_FAMILIES else "tree"
    extra = features.transformers(construct=bool(fe["construct"]), task=task, seed=seed,
                                  interactions=_given(fe.get("interactions")))
    # A sparse matrix of every level (linear families): no selection step, which scores dense columns.
    every_level = style == "dense" and REGISTRY[family].every_level and pcfg.every_level and bool(many_levels(plan))
    preprocessor = build_preprocessor(plan, style, pcfg, extra=extra, every_level=every_level)
    categorical = tuple(plan.of_role("categorical")) if style == "tree" else ()
    # A lower bound for trees' input: one column per numeric or categorical column, more for the others.
    n_features = len(plan.of_role("numeric", "categorical", "datetime", "text"))
    wide = tuple(c for c in categorical if (plan.columns[c].levels or 0) > HGB_MAX_LEVELS)
    estimator = BUILDERS[family](config["params"], Context(task, seed, categorical, n_features, wide, budget))
    if task == "regression" and style == "dense":
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.preprocessing import StandardScaler

        # Distance- and gradient-based regressors work in units of the target: standardise it.
        estimator = TransformedTargetRegressor(estimator, transformer=StandardScaler())
    steps: list[tuple[str, Any]] = [("preprocess", preprocessor)]
    if fe["keep"] < 1.0 and not every_level:
        steps.append(("select", FeatureSelector(task, fe["keep"], fe["select"], seed, protect=categorical,
                                                columns=_given(fe.get("columns")))))
    return Pipeline([*steps, ("model", estimator)])


def _given(names: list[str] | None) -> tuple[str, ...] | None:
    return None if names is None else tuple(names)


def refit_candidate(record: dict[str, Any]) -> dict[str, Any]:
    """A trial's configuration for a refit on more rows: its feature settings with the decisions its
    validated fold models agreed on (`decided`: tabpilot.data.features.consensus) fixed."""
    features = {**(record.get("features") or {}), **(record.get("decided") or {})}
    return {"family": record["family"], "params": record["params"], **({"features": features} if features else {})}
