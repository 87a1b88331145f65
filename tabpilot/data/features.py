"""Feature construction and selection, as fitted scikit-learn transformers.

Dates become calendar parts and free text becomes statistics and TF-IDF weights always (the
preprocessor cannot use them as they are). Whether a candidate also gets constructed features
(pairwise arithmetic of the most informative numbers, frequency and cross-fitted target encodings
of high-cardinality categoricals) and how many features it keeps (after correlation filtering,
ranked by mutual information or by a model's importances) is part of the search: a construction or
a selection survives only in the trials whose cross-validated score it improves.

Every transformer lives inside the candidate Pipeline, so it is learned per CV fold, from that
fold's rows only, and the served model still takes raw rows.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer

from tabpilot.core.config import FeaturesConfig
from tabpilot.data.preprocessing import PreprocessPlan, categorical_pipeline

DATE_PARTS = ("year", "month", "day", "weekday", "hour", "elapsed_days")
# Categorical columns with more levels than this also get frequency and target encodings.
HIGH_CARDINALITY = 10
# Informativeness is estimated on at most this many rows of the fold: ranks settle long before.
SCORE_ROWS = 2000
# What a candidate without feature settings (a default, a warm start) gets: the plain pipeline.
PLAIN = {"construct": False, "keep": 1.0, "select": "mi"}


def informativeness(X: pd.DataFrame, y: np.ndarray, task: str, method: str, seed: int) -> np.ndarray:
    """Each column's relevance to the target: mutual information ("mi") or the impurity importance
    of a small extra-trees model ("model"), on a seeded sample of rows."""
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    y = np.asarray(y)
    rows = np.arange(len(y))
    if len(rows) > SCORE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(y), SCORE_ROWS, replace=False))
    values = X.iloc[rows].astype(float).replace([np.inf, -np.inf], np.nan)
    values = values.fillna(values.median()).fillna(0.0).to_numpy()
    target = y[rows]
    if method == "model":
        cls = ExtraTreesRegressor if task == "regression" else ExtraTreesClassifier
        model = cls(n_estimators=50, min_samples_leaf=3, random_state=seed, n_jobs=1).fit(values, target)
        return model.feature_importances_
    score = mutual_info_regression if task == "regression" else mutual_info_classif
    return score(values, target, random_state=seed)


class Interactions(TransformerMixin, BaseEstimator):
    """Squares, signed logs, and pairwise sums, differences, products and ratios of the `top`
    numeric columns with the most mutual information with the target on the fitted rows."""

    def __init__(self, task: str = "binary", top: int = 4, seed: int = 0,
                 columns: tuple[str, ...] | None = None) -> None:
        self.task = task
        self.top = top
        self.seed = seed
        self.columns = columns  # given: these columns, not those the fitted rows would choose (a refit's)

    def fit(self, X: Any, y: Any = None) -> Interactions:
        frame = pd.DataFrame(X).astype(float)
        if self.columns is not None:
            self.columns_ = [str(c) for c in frame.columns if str(c) in self.columns]
        else:
            scores = informativeness(frame, y, self.task, "mi", self.seed)
            order = np.argsort(-scores, kind="stable")[: self.top]
            self.columns_ = [str(frame.columns[i]) for i in sorted(order)]
        self.names_ = list(self._build(frame.head(1)).columns)
        return self

    def _build(self, frame: pd.DataFrame) -> pd.DataFrame:
        x = {c: frame[c].astype(float) for c in self.columns_}
        out = {}
        for c in self.columns_:
            out[f"{c}^2"] = x[c] ** 2
            out[f"log({c})"] = np.sign(x[c]) * np.log1p(np.abs(x[c]))
        for i, a in enumerate(self.columns_):
            for b in self.columns_[i + 1:]:
                out[f"{a}+{b}"] = x[a] + x[b]
                out[f"{a}-{b}"] = x[a] - x[b]
                out[f"{a}*{b}"] = x[a] * x[b]
                out[f"{a}/{b}"] = x[a] / x[b].where(x[b] != 0)
        return pd.DataFrame(out, index=frame.index).replace([np.inf, -np.inf], np.nan)

    def transform(self, X: Any) -> pd.DataFrame:
        return self._build(pd.DataFrame(X))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(self.names_, dtype=object)


class FrequencyEncoder(TransformerMixin, BaseEstimator):
    """Each level as its share of the fitted rows (unseen levels: 0)."""

    def fit(self, X: Any, y: Any = None) -> FrequencyEncoder:
        frame = pd.DataFrame(X).astype(object)
        self.columns_ = [str(c) for c in frame.columns]
        self.shares_ = {c: frame[c].astype(str).value_counts(normalize=True).to_dict()
                        for c in frame.columns}
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = pd.DataFrame(X).astype(object)
        return pd.DataFrame({f"{c}__freq": frame[c].astype(str).map(self.shares_[c]).astype(float).fillna(0.0)
                             for c in frame.columns}, index=frame.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array([f"{c}__freq" for c in self.columns_], dtype=object)


class TargetEncoding(TransformerMixin, BaseEstimator):
    """scikit-learn's TargetEncoder, cross-fitted in `fit_transform` (no row's encoding saw its own
    target), with outputs named `<column>__target...` so they sit beside the column's other codes."""

    def __init__(self, task: str = "binary", seed: int = 0) -> None:
        self.task = task
        self.seed = seed

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> pd.DataFrame:
        from sklearn.model_selection import KFold, StratifiedKFold
        from sklearn.preprocessing import TargetEncoder

        splitter = KFold if self.task == "regression" else StratifiedKFold
        self.encoder_ = TargetEncoder(target_type={"regression": "continuous"}.get(self.task, self.task),
                                      cv=splitter(5, shuffle=True, random_state=self.seed))
        frame = pd.DataFrame(X)
        out = self.encoder_.fit_transform(frame, y)
        return pd.DataFrame(out, columns=self.get_feature_names_out(), index=frame.index)

    def fit(self, X: Any, y: Any = None) -> TargetEncoding:
        self.fit_transform(X, y)
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = pd.DataFrame(X)
        return pd.DataFrame(self.encoder_.transform(frame), columns=self.get_feature_names_out(), index=frame.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array([f"{n}__target" for n in self.encoder_.get_feature_names_out()], dtype=object)


class FeatureSelector(TransformerMixin, BaseEstimator):
    """Keep the `keep` share of features: drop near-duplicates (|correlation| above `max_corr`, the
    less informative of each pair), then keep the most informative by `method` ("mi" or "model").
    `protect` names columns always kept (categoricals a tree learner was told about by name); given
    `columns`, those are kept (a refit keeps what its validated fold models chose: `decisions`)."""

    def __init__(self, task: str = "binary", keep: float = 1.0, method: str = "mi", seed: int = 0,
                 max_corr: float = 0.95, protect: tuple[str, ...] = (),
                 columns: tuple[str, ...] | None = None) -> None:
        self.task = task
        self.keep = keep
        self.method = method
        self.seed = seed
        self.max_corr = max_corr
        self.protect = protect
        self.columns = columns

    def fit(self, X: Any, y: Any = None) -> FeatureSelector:
        frame = pd.DataFrame(X)
        names = [str(c) for c in frame.columns]
        if self.columns is not None:
            self.columns_ = [c for c in names if c in self.columns or c in self.protect]
            self.dropped_ = [c for c in names if c not in self.columns_]
            return self
        scores = informativeness(frame, y, self.task, self.method, self.seed)
        order = [names[i] for i in np.argsort(-scores, kind="stable")]
        sample = frame.head(SCORE_ROWS).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = sample.corr().abs().fillna(0.0)
        survivors: list[str] = []
        for name in order:  # most informative first, so of two near-duplicates the better stays
            if name in self.protect or not any(corr.loc[name, kept] > self.max_corr for kept in survivors):
                survivors.append(name)
        n_keep = max(1, int(np.ceil(self.keep * len(survivors))))
        chosen = set(survivors[:n_keep]) | {c for c in self.protect if c in names}
        self.columns_ = [c for c in names if c in chosen]
        self.dropped_ = [c for c in names if c not in chosen]
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        return pd.DataFrame(X)[self.columns_]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(self.columns_, dtype=object)


class DateParts(TransformerMixin, BaseEstimator):
    """Dates to numbers: calendar parts and days since the earliest training date."""

    def fit(self, X: Any, y: Any = None) -> DateParts:
        frame = self._parse(X)
        self.columns_ = list(frame.columns)
        self.origin_ = {c: frame[c].min() for c in frame.columns}
        return self

    @staticmethod
    def _parse(X: Any) -> pd.DataFrame:
        frame = pd.DataFrame(X)
        return frame.apply(lambda s: pd.to_datetime(s, errors="coerce", format="mixed"))

    def transform(self, X: Any) -> pd.DataFrame:
        frame = self._parse(X)
        out = {}
        for c in self.columns_:
            s = frame[c]
            out.update({
                f"{c}__year": s.dt.year, f"{c}__month": s.dt.month, f"{c}__day": s.dt.day,
                f"{c}__weekday": s.dt.day_of_week, f"{c}__hour": s.dt.hour,
                f"{c}__elapsed_days": (s - self.origin_[c]).dt.total_seconds() / 86400,
            })
        return pd.DataFrame(out, index=frame.index).astype(float)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array([f"{c}__{p}" for c in self.columns_ for p in DATE_PARTS], dtype=object)


class TextStats(TransformerMixin, BaseEstimator):
    """Free text to numbers: length, token count and TF-IDF weights of the most frequent tokens."""

    def __init__(self, max_tokens: int = 30) -> None:
        self.max_tokens = max_tokens

    def fit(self, X: Any, y: Any = None) -> TextStats:
        frame = pd.DataFrame(X).astype(object).fillna("")
        self.columns_ = list(frame.columns)
        self.vectorizers_ = {}
        for c in self.columns_:
            vectorizer = TfidfVectorizer(max_features=self.max_tokens, min_df=2)
            try:
                vectorizer.fit(frame[c].astype(str))
            except ValueError:  # no token appears twice: keep only the length features
                vectorizer = None
            self.vectorizers_[c] = vectorizer
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = pd.DataFrame(X).astype(object).fillna("")
        parts = []
        for c in self.columns_:
            text = frame[c].astype(str)
            stats = pd.DataFrame({f"{c}__length": text.str.len(), f"{c}__tokens": text.str.split().str.len()},
                                 index=frame.index)
            parts.append(stats)
            vectorizer = self.vectorizers_[c]
            if vectorizer is not None:
                weights = vectorizer.transform(text).toarray()
                names = [f"{c}__tf_{t}" for t in vectorizer.get_feature_names_out()]
                parts.append(pd.DataFrame(weights, columns=names, index=frame.index))
        return pd.concat(parts, axis=1).astype(float)

    def __getstate__(self) -> dict[str, Any]:
        # TfidfVectorizer caches id(stop_words), a number local to the process that fitted it.
        # Dropped (it is recomputed when needed), equal fits from different search workers pickle
        # and hash alike, so an ensemble can share them (ensemble.share_preprocessors).
        for vectorizer in getattr(self, "vectorizers_", {}).values():
            if vectorizer is not None:
                vars(vectorizer).pop("_stop_words_id", None)
        return super().__getstate__()  # type: ignore[no-any-return]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = []
        for c in self.columns_:
            names += [f"{c}__length", f"{c}__tokens"]
            vectorizer = self.vectorizers_[c]
            if vectorizer is not None:
                names += [f"{c}__tf_{t}" for t in vectorizer.get_feature_names_out()]
        return np.array(names, dtype=object)


@dataclass(frozen=True)
class FeaturePlan:
    datetime: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)  # candidates for pairwise construction
    high_cardinality: list[str] = field(default_factory=list)  # for frequency and target encoding
    select: bool = False  # whether the search may drop features

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> FeaturePlan:
        return cls(**json.loads(path.read_text()))

    @property
    def can_construct(self) -> bool:
        return len(self.numeric) >= 2 or bool(self.high_cardinality)

    def transformers(self, construct: bool = False, task: str = "binary", seed: int = 0,
                     interactions: tuple[str, ...] | None = None) -> list[tuple[str, Any, list[str]]]:
        """The ColumnTransformer parts that construct features from raw columns (`interactions`: the
        columns to combine, where given, instead of those the fitted rows suggest)."""
        parts: list[tuple[str, Any, list[str]]] = []
        if self.datetime:
            parts.append(("dates", DateParts(), self.datetime))
        if self.text:
            parts.append(("text", TextStats(), self.text))
        if construct and len(self.numeric) >= 2:
            parts.append(("interactions", Interactions(task, seed=seed, columns=interactions), self.numeric))
        if construct and self.high_cardinality:
            parts.append(("frequency", categorical_pipeline(FrequencyEncoder()), self.high_cardinality))
            parts.append(("target_encoding", categorical_pipeline(TargetEncoding(task, seed)), self.high_cardinality))
        return parts


def plan_features(plan: PreprocessPlan, cfg: FeaturesConfig) -> FeaturePlan:
    """Which raw columns get constructed features, and what the search may try."""
    if not cfg.enabled:
        return FeaturePlan()
    high = [c for c in plan.of_role("categorical") if plan.columns[c].levels > HIGH_CARDINALITY]
    return FeaturePlan(datetime=plan.of_role("datetime"), text=plan.of_role("text"),
                       numeric=plan.of_role("numeric") if cfg.construct_ else [],
                       high_cardinality=high if cfg.construct_ else [], select=cfg.select)


def feature_space(plan: FeaturePlan) -> dict[str, tuple[Any, ...]]:
    """The search dimensions the plan allows, in `search_space`'s notation."""
    space: dict[str, tuple[Any, ...]] = {}
    if plan.can_construct:
        space["construct"] = ("choice", [False, True])
    if plan.select:
        space["keep"] = ("choice", [1.0, 0.75, 0.5, 0.3])
        space["select"] = ("choice", ["mi", "model"])
    return space


def describe(model: Any, settings: dict[str, Any] | None) -> dict[str, Any]:
    """What one fitted member does with features: its settings, the features it constructed and,
    when it selects, those it kept and dropped (of its first fold model, for a bag)."""
    pipeline = model.models[0] if hasattr(model, "models") else model
    made = [str(n) for n in pipeline.named_steps["preprocess"].get_feature_names_out()]
    constructed_parts = ("interactions", "frequency", "target_encoding")
    transformers = dict((name, t) for name, t, _ in pipeline.named_steps["preprocess"].transformers_)
    constructed = [str(n) for part in constructed_parts if part in transformers
                   for n in transformers[part].get_feature_names_out()]
    selector = pipeline.named_steps.get("select")
    return {"settings": {**PLAIN, **(settings or {})}, "features_in": len(made), "constructed": constructed,
            "kept": list(selector.columns_) if selector is not None else made,
            "dropped": list(selector.dropped_) if selector is not None else []}


def decisions(pipeline: Any) -> dict[str, list[str]]:
    """What a fitted candidate pipeline chose from its rows: the columns it combined and the
    features it kept (only the steps it has)."""
    found: dict[str, list[str]] = {}
    steps = dict(getattr(pipeline, "steps", []))
    for _, part, _ in getattr(steps.get("preprocess"), "transformers_", []):
        if isinstance(part, Interactions):
            found["interactions"] = list(part.columns_)
        elif isinstance(getattr(part, "steps", [[None, None]])[0][1], Interactions):  # dense: make, impute, scale
            found["interactions"] = list(part.steps[0][1].columns_)
    if isinstance(steps.get("select"), FeatureSelector):
        found["columns"] = list(steps["select"].columns_)
    return found


def consensus(chosen: list[dict[str, list[str]]]) -> dict[str, list[str]]:
    """The fold models' decisions as one, for a refit to keep: the combined columns most folds chose
    (the earliest of a tie) and the features at least half of those folds kept (the others built other
    features to choose from). A refit that chose again on
    its own rows would serve features nobody validated (diamonds_cut at 300 s: test log loss 0.50 before
    such a refit on all rows, 0.70 on the benchmark's rows after it; results/suite_300s_neural_0304901.md)."""
    out: dict[str, list[str]] = {}
    combined = [tuple(c["interactions"]) for c in chosen if "interactions" in c]
    if combined:
        out["interactions"] = list(max(combined, key=lambda c: (combined.count(c), -combined.index(c))))
        chosen = [c for c in chosen if c.get("interactions") == out["interactions"]]
    kept = [c["columns"] for c in chosen if "columns" in c]
    if kept:
        votes: dict[str, int] = {}
        for columns in kept:
            for name in columns:
                votes[name] = votes.get(name, 0) + 1
        out["columns"] = [name for name in votes if 2 * votes[name] >= len(kept)]
    return out
