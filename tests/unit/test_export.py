"""An exported ensemble runs where tabpilot cannot be imported, refits every member on the table it
is given (bags on the same folds) and predicts what the ensemble predicts, for every family, every
transformer, the blend and the stacker (issue 21)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import FunctionTransformer

from tabpilot.core.config import FAMILIES, FeaturesConfig, PreprocessConfig
from tabpilot.data.features import plan_features
from tabpilot.data.preprocessing import plan_preprocessing
from tabpilot.ensemble.export import export_script
from tabpilot.ensemble.model import EnsembleModel, make_stacker, stack_features
from tabpilot.ensemble.source import ExportError, Source
from tabpilot.search.estimators import make_pipeline
from tabpilot.search.evaluate import make_folds
from tabpilot.search.fold_bag import FoldBag
from tabpilot.search.spaces import DEFAULTS
from tests.unit.test_compiled import SETTINGS, _table, _unseen

# Runs the script with tabpilot unimportable: what it needs must be in it.
WITHOUT_TABPILOT = ("import runpy, sys; sys.modules['tabpilot'] = None; sys.argv = sys.argv[1:]; "
                    "runpy.run_path(sys.argv[0], run_name='__main__')")


TASKS = ("binary", "multiclass", "regression")


def _families(task: str) -> tuple[str, ...]:
    """A third of the families per task: each family is exported once in these tests."""
    return FAMILIES[TASKS.index(task)::len(TASKS)]


def _members(task: str, frame: pd.DataFrame, y: np.ndarray) -> list:
    """One member per family, each second a plain model, the others bags of the first three of
    make_folds' folds over two groups (as a late repeat adds one); feature settings alternate."""
    plan = plan_preprocessing(frame, PreprocessConfig())
    fplan = plan_features(plan, FeaturesConfig())
    members = []
    for i, family in enumerate(_families(task)):
        params = dict(DEFAULTS[family])
        for rounds in ("n_estimators", "iterations"):
            if rounds in params:
                params[rounds] = 20

        def pipeline(family: str = family, params: dict = params, i: int = i):
            return make_pipeline({"family": family, "params": params, "features": SETTINGS[i % 2]}, plan, fplan,
                                 PreprocessConfig(), task, 0)
        if i % 2 == 1:
            members.append(pipeline().fit(frame, y))
            continue
        split = {"task": task, "n_folds": 2, "groups": [[7, 1], [8, 1]]}
        folds = make_folds(y, task, 2, 7, 1) + make_folds(y, task, 2, 8, 1)
        models = [pipeline().fit(frame.iloc[rows], y[rows]) for rows, _ in folds[:3]]
        members.append(FoldBag(models, split).fit())
    return members


def _run(script: Path, train: Path, rows: Path, out: Path) -> pd.DataFrame:
    done = subprocess.run([sys.executable, "-c", WITHOUT_TABPILOT, str(script), str(train), str(rows), str(out)],
                          check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return pd.read_csv(out)


@pytest.mark.parametrize("task, stacked, suffix", [
    ("binary", False, ".csv"), pytest.param("multiclass", True, ".parquet", marks=pytest.mark.slow),  # the longest
    ("regression", True, ".parquet")])
def test_the_exported_script_refits_every_member_and_predicts_as_the_ensemble(
        tmp_path: Path, task: str, stacked: bool, suffix: str) -> None:
    frame, y = _table(task, 160)
    labels = {"binary": ["no", "yes"], "multiclass": ["high", "low", "mid"]}.get(task, [])
    members = _members(task, frame, y)
    weights = list(np.linspace(1.0, 2.0, len(members)))
    stacker = None
    if stacked:
        method = "predict" if task == "regression" else "predict_proba"
        outputs = [np.asarray(getattr(m, method)(frame), dtype=float) for m in members]
        stacker = make_stacker(task, 0).fit(stack_features(outputs, task), y)
    temperature = 1.0 if task == "regression" else 1.3
    model = EnsembleModel(members, weights, task, labels or None, temperature, stacker).fit()
    script = tmp_path / "pipeline.py"
    script.write_text(export_script(model, "target", {"x1": "numeric"}, title="a test ensemble"))

    table = frame.assign(target=np.asarray(labels, dtype=object)[y] if labels else y)
    train, rows = tmp_path / f"train{suffix}", tmp_path / f"rows{suffix}"
    write = "to_csv" if suffix == ".csv" else "to_parquet"
    getattr(table, write)(train, index=False)
    unseen = _unseen(frame)
    getattr(unseen, write)(rows, index=False)
    got = _run(script, train, rows, tmp_path / "out.csv")

    expected = model.predict_frame(unseen)
    assert list(got.columns) == list(expected.columns)
    numbers = [c for c in expected.columns if c.startswith("proba_")] or ["prediction"]
    np.testing.assert_allclose(got[numbers].to_numpy(), expected[numbers].to_numpy(), rtol=0, atol=1e-6)
    if labels:
        assert list(got["prediction"].astype(str)) == list(expected["prediction"])
    text = script.read_text()
    assert not re.search(r"^\s*(from|import) tabpilot", text, flags=re.MULTILINE)
    assert text.count("\ndef member_") == len(_families(task)) and "BAGS = " in text


def test_a_member_the_script_cannot_rebuild_is_refused_by_name() -> None:
    with pytest.raises(ExportError, match="defined inside a function"):
        Source().code(FunctionTransformer(lambda x: x))
    assert Source().code(FunctionTransformer(np.log1p)) == "FunctionTransformer(func=np.log1p)"
    bag = FoldBag([FunctionTransformer()]).fit()  # a bag from before the folds were recorded
    with pytest.raises(ValueError, match="does not record its folds"):
        export_script(EnsembleModel([bag], [1.0], "regression").fit(), "y")
