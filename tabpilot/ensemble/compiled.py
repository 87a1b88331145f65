"""The ensemble compiled for inference, once, when it is made: each distinct fitted preprocessor as
numpy work (tabpilot.data.fast_preprocess), each model as one call on its matrix (tabpilot.ensemble.fast_models).

A fold pipeline is compiled only if its compiled output equals its own on probe rows (test rows,
with holes and unseen levels); otherwise it predicts as it always did. So compiling changes the
time a prediction takes, never its value (benchmarks/results/serving_demo.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from tabpilot.data.fast_preprocess import FastPreprocessor, Rows, compile_preprocessor, probe_rows
from tabpilot.data.request_columns import Columns
from tabpilot.ensemble.fast_models import compile_model


@dataclass
class _Step:
    preprocessor: int  # index into CompiledEnsemble.preprocessors
    columns: np.ndarray | None  # the columns a selector keeps, or None
    predict: Any  # (X, threads) -> predictions


# Raised whenever what a CompiledEnsemble pickles changes: a model compiled by another version of
# this code is then predicted uncompiled (slower, the same values) instead of failing.
FORMAT = 1


@dataclass
class CompiledEnsemble:
    """Per member, per fold model: a compiled step, or the fitted pipeline itself."""

    preprocessors: list[FastPreprocessor] = field(default_factory=list)
    members: list[list[Any]] = field(default_factory=list)
    format: int = FORMAT

    @property
    def current(self) -> bool:
        return self.format == FORMAT

    def outputs(self, X: pd.DataFrame | Columns, method: str, threads: int) -> list[np.ndarray]:
        """Each member's prediction (bags averaged), as `EnsembleModel` combines them."""
        matrices: dict[int, np.ndarray] = {}
        rows = Rows(X)
        result = []
        for folds in self.members:
            predictions = []
            for step in folds:
                if not isinstance(step, _Step):
                    predictions.append(np.asarray(getattr(step, method)(rows.frame), dtype=float))
                    continue
                if step.preprocessor not in matrices:
                    matrices[step.preprocessor] = self.preprocessors[step.preprocessor].transform(rows)
                Z = matrices[step.preprocessor]
                predictions.append(step.predict(Z if step.columns is None else Z[:, step.columns], threads))
            result.append(predictions[0] if len(predictions) == 1 else np.mean(predictions, axis=0))
        return result

    @property
    def summary(self) -> dict[str, int]:
        steps = [s for folds in self.members for s in folds]
        compiled = [s for s in steps if isinstance(s, _Step)]
        return {"pipelines": len(steps), "compiled": len(compiled), "preprocessors": len(self.preprocessors),
                "preprocessor_parts_kept": sum(p.kept_parts for p in self.preprocessors)}


def _compile_pipeline(pipeline: Any, method: str, rows: pd.DataFrame, known: dict[int, int],
                      preprocessors: list[FastPreprocessor]) -> Any:
    if not isinstance(pipeline, Pipeline) or not 2 <= len(pipeline.steps) <= 3:
        return pipeline
    first = pipeline.steps[0][1]
    if id(first) not in known:
        try:
            fast = compile_preprocessor(first, rows)
        except Exception:  # a part that cannot take the probe rows: the pipeline predicts as it did
            fast = None
        if fast is None:
            known[id(first)] = -1
        else:
            known[id(first)] = len(preprocessors)
            preprocessors.append(fast)
    index = known[id(first)]
    if index < 0:
        return pipeline
    names = preprocessors[index].names
    columns = None
    if len(pipeline.steps) == 3:
        selector = pipeline.steps[1][1]
        if not hasattr(selector, "columns_"):
            return pipeline
        columns = np.array([names.index(c) for c in selector.columns_])
    Z = preprocessors[index].transform(rows)
    expected = np.asarray(getattr(pipeline, method)(rows), dtype=float)
    predict = compile_model(pipeline.steps[-1][1], method, Z if columns is None else Z[:, columns], expected)
    return pipeline if predict is None else _Step(index, columns, predict)


def compile_ensemble(members: list[list[Any]], task: str, rows: pd.DataFrame, seed: int) -> CompiledEnsemble:
    """Each member's fitted pipelines (one, or a bag's folds) compiled against probe rows made from `rows`."""
    method = "predict" if task == "regression" else "predict_proba"
    probe = probe_rows(rows, seed)
    compiled = CompiledEnsemble()
    known: dict[int, int] = {}
    for folds in members:
        compiled.members.append([_compile_pipeline(p, method, probe, known, compiled.preprocessors)
                                 for p in folds])
    return compiled
