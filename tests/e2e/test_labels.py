"""An integer 0/1 target comes back as 0/1 (not 0.0/1.0, not `proba_0.0`) from `tabpilot predict`,
from the served model and in the registered signature: predictions join back to the labels."""

import mlflow
import pandas as pd
import pytest

from tests.helpers import cli_env, make_frame, run_cli, served

pytestmark = pytest.mark.e2e
BUDGET = 45
NAME = "int_labels_e2e"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("labels")
    frame = make_frame(200, "binary", seed=2)
    frame["y"] = (frame["y"] == "yes").astype(int)
    frame.to_csv(root / "train.csv", index=False)
    # One cheap family and few trials: this test is about the labels, not the search.
    (root / "params.yaml").write_text(f"search:\n  families: [linear]\n  max_trials: 3\n  time_budget: {BUDGET}\n"
                                      f"register:\n  name: {NAME}\n")
    result = run_cli(["train", "--data", "train.csv", "--target", "y", "--params", "params.yaml", "--seed", "0"],
                     cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    rows = make_frame(30, "binary", seed=5).drop(columns="y")
    rows.to_csv(root / "new.csv", index=False)
    return {"root": root, "rows": rows}


@pytest.fixture(scope="module")
def scored(project: dict) -> pd.DataFrame:
    result = run_cli(["predict", "--model", f"models:/{NAME}@champion", "--input", "new.csv",
                      "--output", "scored.csv"], cwd=project["root"])
    assert result.returncode == 0, result.stderr
    return pd.read_csv(project["root"] / "scored.csv")


def test_predict_writes_integer_labels_and_proba_columns_named_by_them(project: dict, scored: pd.DataFrame) -> None:
    assert list(scored.columns) == [*project["rows"].columns, "prediction", "proba_0", "proba_1"]
    assert pd.api.types.is_integer_dtype(scored["prediction"]), scored["prediction"].head().tolist()
    assert set(scored["prediction"]) <= {0, 1}


def test_the_registered_signature_says_the_prediction_is_an_integer(project: dict) -> None:
    outputs = mlflow.models.get_model_info(f"models:/{NAME}@champion").signature.outputs
    assert {c.name: c.type.name for c in outputs.inputs} == {"prediction": "long", "proba_0": "double",
                                                              "proba_1": "double"}


def test_the_served_model_answers_the_same_integer_labels(project: dict, scored: pd.DataFrame) -> None:
    with served(f"models:/{NAME}@champion", project["root"], cli_env(project["root"])) as server:
        rows = project["rows"].astype(object).where(project["rows"].notna(), None)
        answer = server.invoke(rows)["predictions"]
    assert set(answer[0]) == {"prediction", "proba_0", "proba_1"}
    # JSON keeps the difference: 1 parses to an int, 1.0 to a float
    assert all(type(row["prediction"]) is int for row in answer)
    assert [row["prediction"] for row in answer] == scored["prediction"].tolist()
