"""`tabpilot train` as a user runs it, on real Titanic data, with real Prefect, MLflow, GX and registry."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import BIN, cli_env, journaled_trials, run_cli, served
from tests.unit.test_export import WITHOUT_TABPILOT

pytestmark = pytest.mark.e2e
BUDGET = 45
TRIALS = 12  # a trial count, not a time limit: what the tests see does not depend on the machine's speed
NAME = "titanic_e2e"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, titanic_csv: Path) -> dict:
    root = tmp_path_factory.mktemp("project")
    (root / "params.yaml").write_text(
        f"search:\n  max_trials: {TRIALS}\n  time_budget: {4 * BUDGET}\n"
        "validate:\n  expectations:\n    - expectation: expect_column_values_to_be_between\n"
        "      kwargs: {column: age, min_value: 0, max_value: 120}\n")
    result = run_cli(["train", "--data", str(titanic_csv), "--target", "survived", "--params", "params.yaml",
                      "--name", NAME, "--seed", "0"], cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    return {"root": root, "result": result, "run": root / "runs" / NAME}


def test_train_prints_a_summary(project: dict) -> None:
    # Keeping the budget is measured by benchmarks/overhead.py: a timed test passes or fails by the machine.
    out = project["result"].stdout
    assert f"models:/{NAME}@champion" in out and "test score" in out and "mlflow ui" in out
    assert f"{TRIALS} (" in out  # the trial count line
    assert "Traceback" not in project["result"].stderr


def test_mlflow_holds_a_parent_run_and_one_child_per_trial(project: dict, titanic_csv: Path) -> None:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(NAME)
    registration = json.loads((project["run"] / "reports" / "registration.json").read_text())
    parent = client.get_run(registration["run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tabpilot.kind"] == "pipeline"
    assert {"test_score", "search.trials", "ensemble_cv_score"} <= set(parent.data.metrics)
    assert parent.data.params["data.target"] == "survived"
    trials = json.loads((project["run"] / "artifacts" / "search" / "trials.json").read_text())
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
                                  max_results=1000)
    assert len(children) == len(trials) == TRIALS
    families = {c.data.params["family"] for c in children}
    # the cheapest family's default runs first, the portfolio's picks of several families after it
    assert len(families) >= 4 and "linear" in families
    for child in children:
        assert {"cv_score", "fit_time"} <= set(child.data.metrics) or child.data.tags["status"] != "ok"
        assert child.data.tags["status"] in {"ok", "pruned", "stopped", "timeout", "failed"}
        family = child.data.params["family"]
        assert any(k.startswith(f"{family}.") for k in child.data.params)
        assert {"features.construct", "features.keep"} <= set(child.data.params)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"inputs", "reports", "data_docs", "model_contract"} <= artifacts
    plots = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "reports/plots")}
    assert plots == {"convergence.png", "ensemble_weights.png", "feature_importance.png", "confusion_matrix.png"}
    reports = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "reports")}
    assert {"metrics.json", "leaderboard.csv", "features.json", "registration.json"} <= reports
    inputs = {(i.dataset.name, {t.key: t.value for t in i.tags}["mlflow.data.context"])
              for i in parent.inputs.dataset_inputs}
    assert inputs == {(f"{NAME}-training", "training"), (f"{NAME}-test", "test")}
    version = client.get_model_version_by_alias(NAME, "champion")
    assert {"contract_version", "data_fingerprint", "params_hash", "git_commit", "test_score", "metric",
            "time_budget"} <= set(version.tags)
    # the hash `dvc add` records for the training file (DVC 3: the md5 of its bytes)
    assert version.tags["data_md5"] == hashlib.md5(titanic_csv.read_bytes()).hexdigest()


def test_registry_champion_predicts_raw_rows_with_gaps_and_unseen_levels(project: dict, titanic: pd.DataFrame) -> None:
    version = MlflowClient().get_model_version_by_alias(NAME, "champion")
    assert str(version.version) == "1"
    assert version.tags["metric"] == "roc_auc" and float(version.tags["test_score"]) > 0.75
    rows = titanic.drop(columns="survived").head(6).copy()
    rows.loc[rows.index[0], "age"] = None
    rows.loc[rows.index[1], "passengerClass"] = "4th"
    rows.loc[rows.index[2], "sex"] = None
    out = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(rows)
    assert list(out.columns) == ["prediction", "proba_no", "proba_yes"]
    assert out["prediction"].isin(["no", "yes"]).all()
    assert ((out["proba_no"] + out["proba_yes"]) - 1).abs().max() < 1e-6


def test_predict_command_writes_rows_plus_predictions(project: dict, titanic: pd.DataFrame) -> None:
    rows = titanic.drop(columns="survived").sample(40, random_state=1)
    rows.to_csv(project["root"] / "new.csv", index=False)
    result = run_cli(["predict", "--model", f"models:/{NAME}@champion", "--input", "new.csv",
                      "--output", "scored.csv"], cwd=project["root"])
    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(project["root"] / "scored.csv")
    assert list(scored.columns) == [*rows.columns, "prediction", "proba_no", "proba_yes"]
    assert len(scored) == 40


def test_predict_names_an_unknown_model_in_one_line(project: dict) -> None:
    result = run_cli(["predict", "--model", "models:/nope@champion", "--input", "new.csv", "--output", "x.csv"],
                     cwd=project["root"])
    assert result.returncode == 2
    assert "no version of 'nope' has alias 'champion'" in result.stderr and "Traceback" not in result.stderr


def test_export_writes_a_script_that_refits_the_champion_and_predicts_as_it_does(project: dict, tmp_path: Path) -> None:
    """The exported script, run as a user runs it (tabpilot unimportable), fitted on the run's training
    split gives the champion's predictions of the test split (issue 21)."""
    script = project["root"] / "pipeline.py"
    result = run_cli(["export", "--model", f"models:/{NAME}@champion", "--output", "pipeline.py"], cwd=project["root"])
    assert result.returncode == 0, result.stderr
    assert script.is_file() and "pipeline.py" in result.stderr
    prepared = project["run"] / "data" / "prepared"
    done = subprocess.run([sys.executable, "-c", WITHOUT_TABPILOT, str(script), str(prepared / "train.parquet"),
                           str(prepared / "test.parquet"), str(tmp_path / "out.csv")],
                          check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    got = pd.read_csv(tmp_path / "out.csv")
    test = pd.read_parquet(prepared / "test.parquet").drop(columns="survived")
    expected = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(test)
    assert list(got.columns) == list(expected.columns) == ["prediction", "proba_no", "proba_yes"]
    assert (got[["proba_no", "proba_yes"]] - expected[["proba_no", "proba_yes"]]).abs().max().max() < 1e-6
    assert list(got["prediction"]) == list(expected["prediction"])
    missing = run_cli(["export", "--model", "models:/nope@champion"], cwd=project["root"])
    assert missing.returncode == 2 and "no version of 'nope' has alias 'champion'" in missing.stderr
    assert "Traceback" not in missing.stderr


def _post(port: int, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_serve_answers_invocations_like_batch_predict(project: dict, titanic: pd.DataFrame) -> None:
    env = cli_env(project["root"])
    # as `.venv/bin/tabpilot serve` runs for a user who has not activated the venv
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != BIN)
    features = titanic.drop(columns="survived").head(40)
    with served(f"models:/{NAME}@champion", project["root"], env) as server:
        port = server.port
        rows = features.astype(object).where(features.notna(), None)
        answer = pd.DataFrame(server.invoke(rows)["predictions"])
        batch = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(features)
        assert answer["prediction"].tolist() == batch["prediction"].tolist()
        assert (answer["proba_yes"] - batch["proba_yes"]).abs().max() < 1e-6
        # MLflow's other request formats and CSV score the same rows alike
        for body, kind in ((json.dumps({"dataframe_records": rows.to_dict(orient="records")}), "application/json"),
                           (json.dumps({"inputs": rows.to_dict(orient="list")}), "application/json"),
                           (features.to_csv(index=False), "text/csv")):
            status, text = _post(port, body.encode(), kind)
            assert status == 200, text
            assert pd.DataFrame(json.loads(text)["predictions"])["prediction"].tolist() == batch["prediction"].tolist()
        empty = json.dumps({"dataframe_split": {"columns": list(rows.columns), "data": []}}).encode()
        assert _post(port, empty) == (200, '{"predictions":[]}')
        # a client's mistake is a 4xx naming it, never a stack trace: a missing column (also one the
        # signature leaves optional: age had gaps), an infinity, text in a numeric column, an age the
        # contract's error-severity expectation forbids (as `tabpilot predict` refuses it), bad JSON
        for bad, named in ((rows.drop(columns="sex"), "sex"), (rows.drop(columns="age"), "missing column(s) ['age']"),
                           (rows.assign(age=float("inf")), "infinity"), (rows.assign(age="old"), "(age)"),
                           (rows.assign(age=-500), "expect_column_values_to_be_between(age)")):
            status, text = _post(port, json.dumps({"dataframe_split": bad.to_dict(orient="split")}).encode())
            assert 400 <= status < 500 and named in text, text
            assert "Traceback" not in text and ".py" not in text
        for body in (b"{not json", b'{"dataframe_split": {}}', b'{"rows": []}'):
            status, text = _post(port, body)
            assert status == 400 and "Traceback" not in text and ".py" not in text, text


def test_a_model_short_of_the_margin_becomes_challenger_and_the_champion_stays(project: dict,
                                                                                titanic_csv: Path) -> None:
    # No model beats the champion's AUC by 0.5: whatever this run scores, the gate must hold.
    params = project["root"] / "weak.yaml"
    params.write_text(f"search:\n  families: [linear]\n  max_trials: 2\n  time_budget: {BUDGET}\n"
                      f"register:\n  name: {NAME}\n  margin: 0.5\n")
    result = run_cli(["train", "--data", str(titanic_csv), "--target", "survived", "--params", str(params),
                      "--seed", "0", "--workdir", "runs/weak"], cwd=project["root"])
    assert result.returncode == 0, result.stderr[-3000:]
    registration = json.loads((project["root"] / "runs" / "weak" / "reports" / "registration.json").read_text())
    client = MlflowClient()
    assert registration["champion_score"] is not None and registration["gate"] == "scored on this test split"
    assert registration["alias"] == "challenger" and registration["version"] == "2"
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == "2"


def test_validate_checks_a_batch_against_the_champions_contract(project: dict, titanic: pd.DataFrame) -> None:
    rows = titanic.drop(columns="survived").head(100)
    rows.to_csv(project["root"] / "batch.csv", index=False)
    ok = run_cli(["validate", "--data", "batch.csv", "--model", f"models:/{NAME}@champion"], cwd=project["root"])
    assert ok.returncode == 0, ok.stderr
    assert "contract holds" in ok.stderr
    broken = rows.assign(age=rows["age"].astype(object).where(rows.index != 3, "unknown"))
    broken.to_csv(project["root"] / "broken.csv", index=False)
    bad = run_cli(["validate", "--data", "broken.csv", "--model", f"models:/{NAME}@champion", "--report", "r.json"],
                  cwd=project["root"])
    assert bad.returncode == 1
    assert "expect_column_values_to_be_in_type_list(age)" in bad.stderr
    report = json.loads((project["root"] / "r.json").read_text())
    assert report["success"] is False and report["failures"][0]["column"] == "age"
    # the model directory carries the same contract
    local = run_cli(["validate", "--data", "broken.csv", "--model", str(project["run"] / "artifacts" / "model")],
                    cwd=project["root"])
    assert local.returncode == 1 and "expect_column_values_to_be_in_type_list(age)" in local.stderr


def test_predict_refuses_rows_that_break_the_contract_and_warns_on_drift(project: dict, titanic: pd.DataFrame) -> None:
    rows = titanic.drop(columns="survived").head(40)
    rows.drop(columns="sex").to_csv(project["root"] / "no_sex.csv", index=False)
    refused = run_cli(["predict", "--model", f"models:/{NAME}@champion", "--input", "no_sex.csv",
                       "--output", "refused.csv"], cwd=project["root"])
    assert refused.returncode == 2 and "breaks the model's data contract" in refused.stderr
    assert "missing ['sex']" in refused.stderr and "Traceback" not in refused.stderr
    assert not (project["root"] / "refused.csv").exists()
    # older than any passenger in training (a range warning), yet under the contract's own bound of 120
    rows.assign(age=rows["age"] * 1.4).to_csv(project["root"] / "old.csv", index=False)
    warned = run_cli(["predict", "--model", f"models:/{NAME}@champion", "--input", "old.csv",
                      "--output", "old_pred.csv"], cwd=project["root"])
    assert warned.returncode == 0, warned.stderr
    said = " ".join((warned.stdout + warned.stderr).split())
    assert "[warning: ranges] expect_column_values_to_be_between(age)" in said
    assert len(pd.read_csv(project["root"] / "old_pred.csv")) == 40


def test_models_lists_versions_with_aliases(project: dict) -> None:
    result = run_cli(["models", "--name", NAME], cwd=project["root"])
    assert result.returncode == 0, result.stderr
    assert "champion" in result.stdout and "roc_auc" in result.stdout


def test_a_killed_train_resumes_without_running_a_finished_trial_again(project: dict, titanic_csv: Path,
                                                                        tmp_path: Path) -> None:
    """`kill -9` of `tabpilot train` mid-search, then the same command with --resume (issue 22): the
    trials that had finished are not run again, the model is registered once, on the killed run's
    MLflow run, with one child run per trial, and it is the model of the run that was never stopped."""
    name = "resumed_e2e"
    (tmp_path / "params.yaml").write_text((project["root"] / "params.yaml").read_text())
    args = ["train", "--data", str(titanic_csv), "--target", "survived", "--params", "params.yaml", "--name", name,
            "--seed", "0"]
    run = tmp_path / "runs" / name
    journal = run / "artifacts" / "journal"
    # Its own process, not a warm server's fork: the kill must hit the process doing the search.
    with (tmp_path / "killed.log").open("w") as log:
        process = subprocess.Popen([str(BIN / "tabpilot"), *args], cwd=tmp_path, stdout=log, stderr=log,
                                   env=cli_env(tmp_path) | {"TABPILOT_WARM": "0"})
        deadline = time.time() + 300
        while len(journaled_trials(journal)) < 4 and process.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    killed_at = time.time()
    finished = journaled_trials(journal)
    assert 4 <= len(finished) < TRIALS, (tmp_path / "killed.log").read_text()[-3000:]
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.search_model_versions(f"name='{name}'") == []
    # The killed run's MLflow run, if it was opened by then (on a busy machine MLflow may start after
    # the first trials): the resumed run continues it, else opens one.
    run_info = run / "artifacts" / "search" / "run.json"
    killed_run = json.loads(run_info.read_text())["run_id"] if run_info.exists() else None

    result = run_cli([*args, "--resume"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # A trial finished before the kill began then, in the killed run; the others began in the resumed one.
    began = {t["trial"]: t["began"] for t in json.loads((run / "artifacts" / "search" / "trials.json").read_text())
             if t["began"] is not None}
    assert all((began[t] < killed_at) == (t in finished) for t in began), (began, finished, killed_at)
    assert not journal.exists()  # registered: nothing left to resume
    assert [str(v.version) for v in client.search_model_versions(f"name='{name}'")] == ["1"]
    registration = json.loads((run / "reports" / "registration.json").read_text())
    assert registration["run_id"] == (killed_run or registration["run_id"])
    assert client.get_run(registration["run_id"]).info.status == "FINISHED"
    children = client.search_runs([client.get_experiment_by_name(name).experiment_id],
                                  f"tags.mlflow.parentRunId = '{registration['run_id']}'", max_results=1000)
    assert sorted(int(c.data.metrics["trial"]) for c in children) == list(range(TRIALS))

    def trials(root: Path) -> list[tuple]:
        return [(t["trial"], t["family"], json.dumps(t["params"], sort_keys=True), t["score"])
                for t in json.loads((root / "artifacts" / "search" / "trials.json").read_text())]

    assert trials(run) == trials(project["run"])
    test = pd.read_parquet(run / "data" / "prepared" / "test.parquet").drop(columns="survived")
    uninterrupted = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(test)  # the project's registry
    project_uri = mlflow.get_tracking_uri()
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        resumed = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(test)
    finally:
        mlflow.set_tracking_uri(project_uri)
        mlflow.set_registry_uri(project_uri)
    pd.testing.assert_frame_equal(resumed, uninterrupted)

    again = run_cli([*args, "--resume"], cwd=tmp_path)
    assert again.returncode == 2 and "nothing to resume" in again.stderr and "Traceback" not in again.stderr
