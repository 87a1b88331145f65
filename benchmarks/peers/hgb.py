"""scikit-learn's default HistGradientBoosting{Classifier,Regressor} with
categorical_features="from_dtype" and random_state=0. Run by the project's interpreter.

HGB takes at most 255 levels in a native categorical column (its max_bins); a wider column is
ordinal-coded instead (its category codes as numbers, missing stays missing) and the result
says which columns were.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from peers.common import Run, align_proba, main

MAX_CATEGORIES = 255
PACKAGES = ("scikit-learn", "pandas", "numpy")


def ordinal_code_wide(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`frame` with the given categorical columns replaced by their codes (NaN for missing)."""
    frame = frame.copy()
    for column in columns:
        frame[column] = frame[column].cat.codes.astype(float).replace(-1.0, np.nan)
    return frame


def plain_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns whose levels are pandas' NA-typed strings get plain `str` levels: HGB's
    encoder cannot read pd.NA ("Encoders require ... uniformly strings or numbers")."""
    frame = frame.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype) and frame[column].cat.categories.dtype == "string":
            frame[column] = frame[column].cat.rename_categories(str)
    return frame


def fit_predict(run: Run) -> np.ndarray:
    split = run.split
    X_train, X_test = plain_categories(split.X_train), plain_categories(split.X_test)
    wide = [c for c in X_train.columns if isinstance(X_train[c].dtype, pd.CategoricalDtype)
            and len(X_train[c].cat.categories) > MAX_CATEGORIES]
    if wide:
        run.notes["ordinal_coded_columns"] = wide
    X_train, X_test = ordinal_code_wide(X_train, wide), ordinal_code_wide(X_test, wide)
    estimator = HistGradientBoostingClassifier if split.is_classification else HistGradientBoostingRegressor
    model = estimator(categorical_features="from_dtype", random_state=0).fit(X_train, split.y_train)
    if not split.is_classification:
        return model.predict(X_test)
    return align_proba(model.predict_proba(X_test), model.classes_, split.labels)


if __name__ == "__main__":
    sys.exit(main("hgb", fit_predict, PACKAGES))
