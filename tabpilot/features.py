"""Feature construction for columns the preprocessor cannot use as they are: dates and free text.

Every constructed feature is a fitted scikit-learn transformer inside the candidate Pipeline, so
it is learned per CV fold and the served model still takes raw rows.
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

from tabpilot.config import FeaturesConfig
from tabpilot.preprocessing import PreprocessPlan

DATE_PARTS = ("year", "month", "day", "weekday", "hour", "elapsed_days")


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

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> FeaturePlan:
        return cls(**json.loads(path.read_text()))

    def transformers(self) -> list[tuple[str, Any, list[str]]]:
        """The ColumnTransformer parts that construct these features from raw columns."""
        parts: list[tuple[str, Any, list[str]]] = []
        if self.datetime:
            parts.append(("dates", DateParts(), self.datetime))
        if self.text:
            parts.append(("text", TextStats(), self.text))
        return parts


def plan_features(plan: PreprocessPlan, cfg: FeaturesConfig) -> FeaturePlan:
    """Which raw columns get constructed features."""
    if not cfg.enabled:
        return FeaturePlan()
    return FeaturePlan(datetime=plan.of_role("datetime"), text=plan.of_role("text"))
