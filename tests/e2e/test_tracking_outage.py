"""A tracking server that stops answering mid-run (issue 22): MLflow's retries wait about
`tracking.wait_seconds`, then the run ends in one line naming the fix; every finished trial stays in
the run's journal, and the same command with --resume, once the server is back, logs what is
missing and registers the model once."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import (
    BIN,
    cli_env,
    free_port,
    healthy,
    journaled_trials,
    mlflow_server,
    run_cli,
    stop_service,
    wait_for,
)

pytestmark = pytest.mark.e2e
NAME = "titanic_outage"
TRIALS = 30  # enough that the search still runs when the server stops, on a busy machine too


def test_a_stopped_tracking_server_ends_the_run_in_one_line_and_resume_finishes_it(tmp_path: Path,
                                                                                   titanic_csv: Path) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    store = tmp_path / "tracking_server"
    store.mkdir()
    env = cli_env(tmp_path) | {"MLFLOW_TRACKING_URI": uri}
    (tmp_path / "params.yaml").write_text(f"search:\n  max_trials: {TRIALS}\n  time_budget: 600\n"
                                          "tracking:\n  wait_seconds: 5\n")
    args = ["train", "--data", str(titanic_csv), "--target", "survived", "--params", "params.yaml", "--name", NAME,
            "--seed", "0"]
    search = tmp_path / "runs" / NAME / "artifacts" / "search"
    server = mlflow_server(port, store, tmp_path, env)
    try:
        wait_for(lambda: healthy(f"{uri}/health"), 90, "the MLflow server did not answer /health")
        with (tmp_path / "train.log").open("w") as log:
            train = subprocess.Popen([str(BIN / "tabpilot"), *args], cwd=tmp_path, env=env, stdout=log,
                                     stderr=subprocess.PIPE, text=True)
            wait_for(lambda: train.poll() is not None or (
                (search / "run.json").exists() and len(journaled_trials(search.parent / "journal")) >= 2),
                300, "two trials did not finish")
            stop_service(server)
            stopped = time.time()
            _, err = train.communicate(timeout=300)
        assert train.returncode == 1, err[-3000:]
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and err.strip().endswith(errors[0]), err[-3000:]  # the progress lines, then it
        assert "stopped answering (retried for 6 s)" in errors[0] and "--resume" in errors[0]
        assert "Traceback" not in err
        assert time.time() - stopped < 120  # MLflow's own retries would wait minutes per call
        assert len(journaled_trials(search.parent / "journal")) >= 2
        killed_run = json.loads((search / "run.json").read_text())["run_id"]

        server = mlflow_server(port, store, tmp_path, env)
        wait_for(lambda: healthy(f"{uri}/health"), 90, "the MLflow server did not answer /health again")
        result = run_cli([*args, "--resume"], cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
        assert result.returncode == 0, result.stderr[-3000:]
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        assert [str(v.version) for v in client.search_model_versions(f"name='{NAME}'")] == ["1"]
        registration = json.loads((search.parents[1] / "reports" / "registration.json").read_text())
        assert registration["run_id"] == killed_run and client.get_run(killed_run).info.status == "FINISHED"
        children = client.search_runs([client.get_experiment_by_name(NAME).experiment_id],
                                      f"tags.mlflow.parentRunId = '{killed_run}'", max_results=1000)
        assert sorted(int(c.data.metrics["trial"]) for c in children) == list(range(TRIALS))
    finally:
        stop_service(server)
