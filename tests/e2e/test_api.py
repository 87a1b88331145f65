"""The Python API as a user calls it: `AutoML().fit(X, y)` on real Titanic rows runs the pipeline
`tabpilot train` runs (MLflow registry, contract, gate), and gives back labels as they went in."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import tabpilot
from tabpilot.core.errors import UserError
from tests.helpers import dask_cluster, run_cli

pytestmark = pytest.mark.e2e
TRIALS = 6  # a trial count, not a time limit: the same model on any machine
SETTINGS = {"search__families": ["linear", "hist_gb"], "search__cv_folds": 3}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory, titanic_csv: Path) -> dict:
    root = tmp_path_factory.mktemp("api")
    here = os.getcwd()
    os.chdir(root)  # the API keeps its runs and MLflow store in the working folder, as the CLI does
    try:
        frame = pd.read_csv(titanic_csv)
        X, y = frame.drop(columns=["survived"]), frame["survived"]
        model = tabpilot.AutoML(time_budget=300, name="api_e2e", seed=0, max_trials=TRIALS, **SETTINGS).fit(X, y)
    finally:
        os.chdir(here)
    return {"root": root, "model": model, "X": X, "y": y}


def test_predictions_come_back_as_the_labels_went_in(fitted: dict) -> None:
    model, X = fitted["model"], fitted["X"]
    labels = model.predict(X.head(20))
    assert set(labels) <= {"yes", "no"} and isinstance(labels[0], str)
    proba = model.predict_proba(X.head(20))
    assert list(proba.columns) == list(model.classes_) == ["no", "yes"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(model.feature_names_in_) == list(X.columns)
    assert model.model_uri_ == "models:/api_e2e/1" and model.alias_ == "champion"


def test_score_on_the_held_out_rows_is_the_registered_test_score(fitted: dict) -> None:
    model = fitted["model"]
    test = pd.read_parquet(model.run_dir_ / "data" / "prepared" / "test.parquet")
    y = test.pop("survived")
    assert model.score(test, y) == pytest.approx(model.test_score_, abs=1e-9)
    assert 0.75 < model.test_score_ <= 1.0


def test_the_leaderboard_holds_every_trial_best_first_and_the_leader_is_a_fitted_pipeline(fitted: dict) -> None:
    model, X = fitted["model"], fitted["X"]
    board = model.leaderboard()
    assert list(board.columns) == ["trial", "family", "cv_score", "fit_time", "status", "ensemble_weight"]
    assert len(board) == TRIALS and set(board["family"]) <= {"linear", "hist_gb"}
    ok = board[board["status"] == "ok"]
    assert list(ok["cv_score"]) == sorted(ok["cv_score"], reverse=True)  # ROC AUC: higher first
    assert board["ensemble_weight"].sum() == pytest.approx(1.0, abs=1e-3)
    leader = model.leader
    assert leader.predict_proba(X.head(5)).shape == (5, 2)
    assert type(leader.steps[-1][1]).__name__.lower().startswith(("logistic", "histgradient"))


def test_export_writes_a_script_that_predicts_as_the_model(fitted: dict, tmp_path: Path) -> None:
    model = fitted["model"]
    script = model.export(tmp_path / "pipeline.py")
    prepared = model.run_dir_ / "data" / "prepared"
    done = subprocess.run([sys.executable, str(script), str(prepared / "train.parquet"),
                           str(prepared / "test.parquet"), str(tmp_path / "out.csv")],
                          check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    test = pd.read_parquet(prepared / "test.parquet")
    expected = model.predict_proba(test.drop(columns="survived"))
    got = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_allclose(got[["proba_no", "proba_yes"]].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-6)


def test_clone_get_and_set_params_keep_the_settings(fitted: dict) -> None:
    model = fitted["model"]
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert copy.get_params()["search__families"] == ["linear", "hist_gb"]
    assert not hasattr(copy, "model_uri_")
    copy.set_params(search__families=["xgboost"], time_budget=20)
    assert copy.config().search.families == ("xgboost",) and copy.config().search.time_budget == 20
    with pytest.raises(UserError, match="not fitted"):
        copy.predict(fitted["X"])
    with pytest.raises(UserError, match="unknown setting"):
        tabpilot.AutoML(families=["linear"])
    with pytest.raises(UserError, match="search.nope"):
        tabpilot.AutoML(search__nope=1).config()


def test_load_gives_a_registered_model_the_same_predict(fitted: dict) -> None:
    model, X = fitted["model"], fitted["X"]
    here = os.getcwd()
    os.chdir(fitted["root"])
    try:
        loaded = tabpilot.load("models:/api_e2e@champion")
    finally:
        os.chdir(here)
    pd.testing.assert_frame_equal(loaded.predict_proba(X.head(30)), model.predict_proba(X.head(30)))


def test_bad_input_gets_one_clear_error(fitted: dict) -> None:
    model, X = fitted["model"], fitted["X"]
    with pytest.raises(UserError, match="sex"):
        model.predict(X.drop(columns=["sex"]).head(5))
    with pytest.raises(UserError, match="needs y"):
        tabpilot.AutoML().fit(X)
    with pytest.raises(UserError, match="one label per row"):
        tabpilot.AutoML().fit(X, fitted["y"].head(10))


def test_the_api_and_tabpilot_train_make_the_same_model(fitted: dict, titanic_csv: Path) -> None:
    # Same seed, data and trial count through the CLI (a Prefect flow) as through the API (in process).
    root = fitted["root"]
    (root / "same.yaml").write_text(f"seed: 0\nsearch:\n  max_trials: {TRIALS}\n  time_budget: 300\n"
                                    "  families: [linear, hist_gb]\n  cv_folds: 3\n")
    result = run_cli(["train", "--data", str(titanic_csv), "--target", "survived", "--params", "same.yaml",
                      "--name", "api_cli"], cwd=root)
    assert result.returncode == 0, result.stderr[-2000:]
    registered = json.loads((root / "runs" / "api_cli" / "reports" / "registration.json").read_text())
    assert registered["test_score"] == pytest.approx(fitted["model"].test_score_, abs=1e-12)
    api = {r.trial: (r.family, r.status, r.cv_score) for r in fitted["model"].leaderboard().itertuples()}
    cli = {t["trial"]: (t["family"], t["status"], t["score"])
           for t in json.loads((root / "runs" / "api_cli" / "artifacts" / "search" / "trials.json").read_text())}
    assert set(api) == set(cli)
    for trial, (family, status, score) in cli.items():
        assert api[trial][:2] == (family, status), trial
        assert (score is None and pd.isna(api[trial][2])) or score == pytest.approx(api[trial][2], abs=1e-12)


@pytest.mark.slow  # starts a Dask cluster
def test_a_dask_cluster_gives_the_trials_and_model_of_the_local_workers(fitted: dict, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`compute.dask_address`: the trials and refits run on a cluster started as users start one (a
    scheduler and two workers on the loopback), the data shipped to it; in trial-count mode they are the
    local pool's trials, scores and model (issue 22)."""
    monkeypatch.chdir(tmp_path)
    with dask_cluster(2, tmp_path) as (address, _):
        model = tabpilot.AutoML(time_budget=300, name="api_dask", seed=0, max_trials=TRIALS,
                                compute__dask_address=address, **SETTINGS).fit(fitted["X"], fitted["y"])

    def trials(run: Path) -> list[tuple]:
        return [(t["trial"], t["family"], json.dumps(t["params"], sort_keys=True), t["score"])
                for t in json.loads((run / "artifacts" / "search" / "trials.json").read_text())]

    assert trials(model.run_dir_) == trials(fitted["model"].run_dir_)
    assert model.test_score_ == fitted["model"].test_score_
    rows = fitted["X"].head(50)
    np.testing.assert_allclose(model.predict_proba(rows), fitted["model"].predict_proba(rows), rtol=0, atol=1e-12)
