"""Training labels keep the type they were written in (0/1 stay integers, not 0.0/1.0) from the CSV
through the saved schema, the target encoding, the ensemble and the pyfunc model that is served."""
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from tabpilot.core.artifacts import save_pickle
from tabpilot.data import files
from tabpilot.ensemble.model import EnsembleModel
from tabpilot.search.evaluate import encode_target

# name: (labels as written, kind recorded, the exact Python type of each class)
LABELS: dict[str, tuple[list[Any], str, type]] = {
    "int 0/1": ([0, 1], "int", int),
    "int 1..12": (list(range(1, 13)), "int", int),  # 10 sorts after 9, not after 1
    "str": (["no", "yes"], "str", str),
    "bool": ([False, True], "bool", bool),
}


def _table(labels: list[Any], path: Path, gaps: bool = False) -> pd.DataFrame:
    """A CSV whose one feature separates the labels; read back as `tabpilot train` reads it."""
    n = 12 * len(labels)
    index = np.arange(n) % len(labels)
    frame = pd.DataFrame({"x": index * 10.0 + np.linspace(0, 1, n), "y": [labels[i] for i in index]})
    if gaps:
        frame["y"] = frame["y"].astype(object).where(np.arange(n) % 7 != 0, None)
    frame.to_csv(path, index=False)
    return files.read_table(path)


def _schema(raw: pd.DataFrame, tmp_path: Path) -> tuple[pd.DataFrame, files.Schema]:
    stored, schema = files.prepare_target(raw, "y", "auto")
    schema.save(tmp_path / "schema.json")
    return stored, files.Schema.load(tmp_path / "schema.json")


@pytest.mark.parametrize("case", list(LABELS))
def test_the_schema_keeps_the_labels_type_through_its_json(tmp_path: Path, case: str) -> None:
    labels, kind, kind_type = LABELS[case]
    _, loaded = _schema(_table(labels, tmp_path / "t.csv"), tmp_path)
    assert loaded.target_kind == kind
    assert loaded.classes == labels
    assert all(type(c) is kind_type for c in loaded.classes)


def test_integer_labels_with_gaps_stay_integers(tmp_path: Path) -> None:
    raw = _table([0, 1], tmp_path / "t.csv", gaps=True)
    assert raw["y"].dtype == "float64"  # how pandas reads integers with missing values
    stored, loaded = _schema(raw, tmp_path)
    assert loaded.classes == [0, 1] and all(type(c) is int for c in loaded.classes)
    assert loaded.dropped_target_rows > 0 and stored["y"].notna().all()


def test_a_float_regression_target_is_untouched(tmp_path: Path) -> None:
    raw = pd.DataFrame({"x": np.arange(40.0), "y": np.linspace(0.5, 3.25, 40)})
    stored, loaded = _schema(raw, tmp_path)
    assert loaded.task == "regression" and loaded.classes == []
    assert stored["y"].dtype == "float64" and np.array_equal(encode_target(stored["y"], loaded), raw["y"].to_numpy())


@pytest.mark.parametrize("case", list(LABELS))
def test_encoding_follows_the_schemas_class_order(tmp_path: Path, case: str) -> None:
    raw = _table(LABELS[case][0], tmp_path / "t.csv")
    stored, loaded = _schema(raw, tmp_path)
    codes = encode_target(stored["y"], loaded)
    assert [loaded.classes[c] for c in codes] == raw["y"].tolist()


def _ensemble(tmp_path: Path, labels: list[Any]) -> tuple[EnsembleModel, pd.DataFrame, pd.Series]:
    raw = _table(labels, tmp_path / "t.csv")
    stored, loaded = _schema(raw, tmp_path)
    X = stored[["x"]]
    member = LogisticRegression(C=100.0, max_iter=5000).fit(X, encode_target(stored["y"], loaded))
    return EnsembleModel([member], [1.0], loaded.task, loaded.classes).fit(), X, raw["y"]


def _has_kind(series: pd.Series, kind: str) -> bool:
    return {"int": pd.api.types.is_integer_dtype, "bool": pd.api.types.is_bool_dtype,
            "str": pd.api.types.is_string_dtype}[kind](series)


@pytest.mark.parametrize("case", list(LABELS))
def test_ensemble_predictions_and_columns_are_the_training_labels(tmp_path: Path, case: str) -> None:
    labels, kind, _ = LABELS[case]
    model, X, y = _ensemble(tmp_path, labels)
    frame = model.predict_frame(X)
    assert list(frame.columns) == ["prediction", *[f"proba_{label}" for label in labels]]
    assert _has_kind(frame["prediction"], kind), frame["prediction"].dtype
    assert frame["prediction"].tolist() == y.tolist()


@pytest.mark.parametrize("case", ["int 0/1", "str", "bool"])
def test_the_pyfunc_model_answers_with_the_training_labels(tmp_path: Path, case: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    from tabpilot.registry import tracking

    labels, kind, _ = LABELS[case]
    model, X, y = _ensemble(tmp_path, labels)
    save_pickle(model, tmp_path / "ensemble.pkl")
    (tmp_path / "contract.json").write_text(json.dumps({"target": "y", "columns": {"x": {}, "y": {}}}))
    tracking.save_model(tmp_path / "model", tmp_path / "ensemble.pkl", tmp_path / "contract.json",
                        X.head(50), model.predict_frame(X.head(50)))
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    out = loaded.predict(X)
    assert list(out.columns) == ["prediction", *[f"proba_{label}" for label in labels]]
    assert _has_kind(out["prediction"], kind) and out["prediction"].tolist() == y.tolist()
    # the signature a registered version shows: the prediction in the labels' type
    outputs = {c.name: c.type.name for c in loaded.metadata.get_output_schema().inputs}
    assert outputs["prediction"] == {"int": "long", "bool": "boolean", "str": "string"}[kind]
    assert set(outputs) == set(out.columns)


@pytest.mark.parametrize("labels", [[0, 1], [False, True]])
def test_a_champion_trained_before_labels_kept_their_type_is_still_scored(tmp_path: Path, labels: list[Any]) -> None:
    from tabpilot.core.metrics import resolve
    from tabpilot.registry.model_versions import score_frame

    stored, loaded = _schema(_table(labels, tmp_path / "t.csv"), tmp_path)
    y = encode_target(stored["y"], loaded)
    p = np.where(y == 1, 0.8, 0.3)
    old_champion = pd.DataFrame({"prediction": y.astype(float), "proba_0.0": 1 - p, "proba_1.0": p})
    assert score_frame(old_champion, y, loaded, resolve("roc_auc", "binary")) == 1.0
