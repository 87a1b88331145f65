"""Estimator builders per algorithm family, and the whole candidate Pipeline (preprocess + model).

Each builder imports its estimator when called: a worker imports only the families it runs, and the
first trial (the linear default) starts sooner (benchmarks/results/overhead.md).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn.pipeline import Pipeline

from tabpilot.config import PreprocessConfig
from tabpilot.features import PLAIN, FeaturePlan, FeatureSelector
from tabpilot.preprocessing import PreprocessPlan, build_preprocessor


@dataclass(frozen=True)
class Context:
    """What every builder may need beyond its hyperparameters."""

    task: str
    seed: int
    categorical: tuple[str, ...] = ()
    n_features: int = 0  # columns the model sees (0: not known)


def _linear(p: dict[str, Any], c: Context) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    if c.task == "regression":
        return Ridge(alpha=1.0 / p["C"], random_state=c.seed)
    return LogisticRegression(C=p["C"], class_weight=p["class_weight"], max_iter=2000, random_state=c.seed)


def _elastic_net(p: dict[str, Any], c: Context) -> Any:
    from sklearn.linear_model import ElasticNet, LogisticRegression

    if c.task == "regression":
        return ElasticNet(alpha=1.0 / p["C"], l1_ratio=p["l1_ratio"], max_iter=5000, random_state=c.seed)
    # saga's epochs past 200 bought nothing measurable (caravan's 5-fold AUC .7367 at 1000, .7372 at 200)
    # and cost 4.6x the time: 7 s of a 60 s search for one unconverged trial.
    return LogisticRegression(C=p["C"], l1_ratio=p["l1_ratio"], solver="saga", max_iter=200, random_state=c.seed)


def _knn(p: dict[str, Any], c: Context) -> Any:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    cls = KNeighborsRegressor if c.task == "regression" else KNeighborsClassifier
    return cls(n_neighbors=p["n_neighbors"], weights=p["weights"], p=p["p"])


def _svm(p: dict[str, Any], c: Context) -> Any:
    from sklearn.svm import SVC, SVR

    if c.task == "regression":
        return SVR(C=p["C"], gamma=p["gamma"])
    return SVC(C=p["C"], gamma=p["gamma"], probability=True, random_state=c.seed)


def _mlp(p: dict[str, Any], c: Context) -> Any:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPRegressor if c.task == "regression" else MLPClassifier
    return cls(hidden_layer_sizes=tuple(int(u) for u in p["hidden"].split("-")), alpha=p["alpha"],
               learning_rate_init=p["learning_rate_init"], batch_size=p["batch_size"], max_iter=200,
               early_stopping=True, n_iter_no_change=10, random_state=c.seed)


def _forest(classifier: str, regressor: str) -> Callable[[dict[str, Any], Context], Any]:
    def build(p: dict[str, Any], c: Context) -> Any:
        import sklearn.ensemble

        cls = getattr(sklearn.ensemble, regressor if c.task == "regression" else classifier)
        return cls(n_estimators=p["n_estimators"], max_features=p["max_features"],
                   min_samples_leaf=p["min_samples_leaf"], max_depth=p["max_depth"],
                   n_jobs=1, random_state=c.seed)
    return build


def _hist_gb(p: dict[str, Any], c: Context) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if c.task == "regression" else HistGradientBoostingClassifier
    # Without early stopping the rounds follow the learning rate: 100 at 0.1, as scikit-learn ships.
    rounds = 1000 if p["early_stopping"] else int(min(500, max(50, round(10.0 / p["learning_rate"]))))
    return cls(learning_rate=p["learning_rate"], max_leaf_nodes=p["max_leaf_nodes"],
               min_samples_leaf=p["min_samples_leaf"], l2_regularization=p["l2_regularization"],
               max_features=p["max_features"], max_iter=rounds, early_stopping=p["early_stopping"],
               n_iter_no_change=20, validation_fraction=0.1,
               categorical_features=list(c.categorical) or None, random_state=c.seed)


MIN_TREE_FEATURES = 2  # columns each XGBoost tree sees, at the least


def _xgboost(p: dict[str, Any], c: Context) -> Any:
    from xgboost import XGBClassifier, XGBRegressor

    cls = XGBRegressor if c.task == "regression" else XGBClassifier
    params = dict(p)
    if c.n_features:
        # XGBoost gives a tree floor(colsample_bytree x columns) of them, at least 1; a tree of one column is
        # additive and cannot model any interaction (on a two-column XOR, no tree can split usefully).
        # The half keeps float32 rounding from flooring 2 columns to 1.
        floor = min(1.0, (MIN_TREE_FEATURES + 0.5) / c.n_features)
        params["colsample_bytree"] = max(params["colsample_bytree"], floor)
    return cls(**params, tree_method="hist", n_jobs=1, random_state=c.seed, verbosity=0)


def _lightgbm(p: dict[str, Any], c: Context) -> Any:
    from lightgbm import LGBMClassifier, LGBMRegressor

    from tabpilot.native_categorical import NativeCategorical

    cls = LGBMRegressor if c.task == "regression" else LGBMClassifier
    # A category needs as many rows as a leaf (LightGBM's own floor, 100, is most of a small table's fold).
    model = cls(n_estimators=p["n_estimators"], learning_rate=p["learning_rate"], num_leaves=p["num_leaves"],
                min_child_samples=p["min_child_samples"], min_data_per_group=p["min_child_samples"],
                subsample=p["subsample"], subsample_freq=1 if p["subsample"] < 1.0 else 0,
                colsample_bytree=p["colsample_bytree"], reg_lambda=p["reg_lambda"], cat_smooth=p["cat_smooth"],
                n_jobs=1, random_state=c.seed, verbose=-1)
    return NativeCategorical(model, c.categorical)


def _catboost(p: dict[str, Any], c: Context) -> Any:
    from catboost import CatBoostClassifier, CatBoostRegressor

    from tabpilot.native_categorical import NativeCategorical

    cls = CatBoostRegressor if c.task == "regression" else CatBoostClassifier
    # allow_writing_files: CatBoost would leave a catboost_info/ folder in the user's directory.
    model = cls(iterations=p["iterations"], learning_rate=p["learning_rate"], depth=p["depth"],
                l2_leaf_reg=p["l2_leaf_reg"], random_strength=p["random_strength"], thread_count=1,
                random_seed=c.seed, verbose=False, allow_writing_files=False)
    return NativeCategorical(model, c.categorical)


BUILDERS: dict[str, Callable[[dict[str, Any], Context], Any]] = {
    "linear": _linear,
    "elastic_net": _elastic_net,
    "knn": _knn,
    "svm": _svm,
    "mlp": _mlp,
    "random_forest": _forest("RandomForestClassifier", "RandomForestRegressor"),
    "extra_trees": _forest("ExtraTreesClassifier", "ExtraTreesRegressor"),
    "hist_gb": _hist_gb,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "catboost": _catboost,
}


def import_families() -> None:
    """Import every family's estimator classes now (the warm server, whose forks then need none)."""
    for task in ("binary", "regression"):
        for build in BUILDERS.values():
            try:
                build({}, Context(task, 0))
            except KeyError:  # no hyperparameters given: the classes are imported by then
                pass


# Families that need imputed, scaled, one-hot input; the others take ordinal codes and NaN.
DENSE_FAMILIES = frozenset({"linear", "elastic_net", "knn", "svm", "mlp"})


def make_pipeline(config: dict[str, Any], plan: PreprocessPlan, features: FeaturePlan,
                  pcfg: PreprocessConfig, task: str, seed: int) -> Pipeline:
    """An unfitted Pipeline that takes raw rows, for one configuration {"family": ..., "params": {...},
    "features": {"construct", "keep", "select"}} (no "features": the plain pipeline)."""
    family = config["family"]
    fe = {**PLAIN, **(config.get("features") or {})}
    style = "dense" if family in DENSE_FAMILIES else "tree"
    extra = features.transformers(construct=bool(fe["construct"]), task=task, seed=seed)
    preprocessor = build_preprocessor(plan, style, pcfg, extra=extra)
    categorical = tuple(plan.of_role("categorical")) if style == "tree" else ()
    # A lower bound for trees' input: one column per numeric or categorical column, more for the others.
    n_features = len(plan.of_role("numeric", "categorical", "datetime", "text"))
    estimator = BUILDERS[family](config["params"], Context(task, seed, categorical, n_features))
    if task == "regression" and style == "dense":
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.preprocessing import StandardScaler

        # Distance- and gradient-based regressors work in units of the target: standardise it.
        estimator = TransformedTargetRegressor(estimator, transformer=StandardScaler())
    steps: list[tuple[str, Any]] = [("preprocess", preprocessor)]
    if fe["keep"] < 1.0:
        steps.append(("select", FeatureSelector(task, fe["keep"], fe["select"], seed, protect=categorical)))
    return Pipeline([*steps, ("model", estimator)])
