"""Column roles and the per-column preprocessing plan, and the scikit-learn transformer built from it.

The plan is data (written to artifacts/preprocess.json); `build_preprocessor` turns it into an
unfitted ColumnTransformer that lives inside each candidate Pipeline, so it is fitted per CV fold
and the served model takes raw rows.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from tabpilot.core.config import PreprocessConfig

ROLES = ("numeric", "categorical", "datetime", "text", "id", "constant")
MISSING = "__missing__"
# HistGradientBoosting takes a categorical column of at most 255 levels (its bins): a wider one reaches
# it as its ordinal codes, a number (tabpilot.families.hist_gb). The other tree learners get every
# level: pooling all but the 249 most frequent of college_earnings' 6,247 institutions into one made
# tabpilot 7% worse than a default HGB on the codes (benchmarks/results/validation_60s_bc211e9.md).
HGB_MAX_LEVELS = 250


@dataclass(frozen=True)
class ColumnPlan:
    role: str
    impute: str | None = None
    encode: str | None = None
    levels: int = 0
    reason: str = ""


@dataclass(frozen=True)
class PreprocessPlan:
    columns: dict[str, ColumnPlan] = field(default_factory=dict)

    def of_role(self, *roles: str) -> list[str]:
        return [c for c, p in self.columns.items() if p.role in roles]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({c: asdict(p) for c, p in self.columns.items()}, indent=2))

    @classmethod
    def load(cls, path: Path) -> PreprocessPlan:
        return cls({c: ColumnPlan(**p) for c, p in json.loads(path.read_text()).items()})


TOKEN_SAMPLE = 10_000


def _looks_like_datetime(series: pd.Series) -> bool:
    sample = series.dropna().astype(str).head(200)
    if sample.empty or not sample.str.contains(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", regex=True).mean() > 0.9:
        return False
    return bool(pd.to_datetime(sample, errors="coerce", format="mixed").notna().mean() > 0.9)


def infer_role(series: pd.Series, cfg: PreprocessConfig) -> tuple[str, str]:
    """The role of one column and why, from its values alone."""
    present = series.dropna()
    n_unique = present.nunique()
    if n_unique <= 1:
        return "constant", f"{n_unique} distinct value"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime", "datetime dtype"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric", "numeric dtype"
    if _looks_like_datetime(series):
        return "datetime", "parses as dates"
    unique_ratio = n_unique / max(len(present), 1)
    # Words per value from a sample: splitting every value of a million rows took 8 s of a 300 s budget.
    sample = present if len(present) <= TOKEN_SAMPLE else present.sample(TOKEN_SAMPLE, random_state=0)
    mean_tokens = float(sample.astype(str).str.split().str.len().mean())
    if unique_ratio >= cfg.id_unique_ratio and mean_tokens < 3:
        return "id", f"{unique_ratio:.0%} unique values"
    if unique_ratio > 0.5 and mean_tokens >= 3:
        return "text", f"free text, {mean_tokens:.1f} tokens on average"
    return "categorical", f"{n_unique} levels"


def plan_preprocessing(X: pd.DataFrame, cfg: PreprocessConfig) -> PreprocessPlan:
    """Decide, per feature column, its role, imputation and encoding."""
    columns: dict[str, ColumnPlan] = {}
    for name in X.columns:
        role, reason = infer_role(X[name], cfg)
        if role == "numeric":
            columns[name] = ColumnPlan(role, impute="median", reason=reason)
        elif role == "categorical":
            levels = int(X[name].nunique())
            encode = "onehot" if levels <= cfg.max_onehot_levels else "ordinal"
            columns[name] = ColumnPlan(role, impute="constant", encode=encode, levels=levels, reason=reason)
        else:
            columns[name] = ColumnPlan(role, reason=reason)
    return PreprocessPlan(columns)


def _to_object(frame: Any) -> Any:
    # sklearn's imputers and encoders mix poorly with pandas' str dtype and NaN; plain objects work.
    return pd.DataFrame(frame).astype(object).where(pd.DataFrame(frame).notna(), MISSING)


def categorical_pipeline(encoder: Any) -> Pipeline:
    to_object = FunctionTransformer(_to_object, feature_names_out="one-to-one")
    return Pipeline([("to_object", to_object), ("encode", encoder)])


def build_preprocessor(plan: PreprocessPlan, style: str, cfg: PreprocessConfig,
                       extra: list[tuple[str, Any, list[str]]] | None = None,
                       every_level: bool = False) -> ColumnTransformer:
    """An unfitted transformer for raw rows, in one of two styles.

    `dense`: impute, scale and one-hot (linear models, k-NN, SVM, MLP need scaled numbers).
    `tree`: numbers as they are (missing values stay NaN for learners that handle them, median
    otherwise) and every categorical column ordinal-encoded, placed last so the learner can be told
    which columns are categorical, by name.
    `every_level` (dense only; for linear models): a categorical with more than `max_onehot_levels`
    levels gets a column for every level, sparse, instead of its most frequent levels and a pool, and
    the output is a sparse matrix: an effect per institution, county or person, shrunk by the model's
    regularisation as a GLM does it (results/every_level_60s.md).
    """
    numeric = plan.of_role("numeric")
    categorical = plan.of_role("categorical")
    parts: list[tuple[str, Any, list[str]]] = []
    sparse = False
    if style == "dense":
        if numeric:
            parts.append(("num", Pipeline([
                ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                ("scale", StandardScaler()),
            ]), numeric))
        for encode in ("onehot", "ordinal"):
            cols = [c for c in categorical if plan.columns[c].encode == encode]
            if cols and encode == "ordinal" and every_level:
                # Unseen levels get no column: the average effect.
                levels = OneHotEncoder(handle_unknown="ignore", sparse_output=True)
                parts.append(("cat_levels", categorical_pipeline(levels), cols))
                sparse = True
            elif cols:
                # High-cardinality columns keep their most frequent levels and pool the rest.
                limit = None if encode == "onehot" else cfg.max_onehot_levels
                encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", sparse_output=False,
                                        min_frequency=cfg.rare_level_share or None, max_categories=limit)
                parts.append((f"cat_{encode}", categorical_pipeline(encoder), cols))
    else:
        if numeric:
            parts.append(("num", "passthrough", numeric))
    for name, maker, cols in extra or []:
        if style == "dense":
            dense = Pipeline([("make", maker), ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                              ("scale", StandardScaler())])
            parts.append((name, dense, cols))
        else:
            parts.append((name, maker, cols))
    if style != "dense" and categorical:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                 encoded_missing_value=np.nan)
        parts.append(("cat", categorical_pipeline(encoder), categorical))
    if sparse:
        # Pandas holds no sparse output; the whole matrix is sparse whenever one part is.
        return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False, sparse_threshold=1.0)
    transformer = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    # Named pandas output lets HistGradientBoosting find the categorical columns by name.
    return transformer.set_output(transform="pandas")


def many_levels(plan: PreprocessPlan) -> list[str]:
    """The categorical columns with more levels than one-hot takes in full by default."""
    return [c for c in plan.of_role("categorical") if plan.columns[c].encode == "ordinal"]


def summary(plan: PreprocessPlan) -> dict[str, int]:
    counts = {role: 0 for role in ROLES}
    for column in plan.columns.values():
        counts[column.role] += 1
    return counts

