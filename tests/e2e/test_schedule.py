"""Scheduled retraining against a real Prefect server and a real MLflow tracking server, both started
here on 127.0.0.1: `tabpilot schedule` registers a cron deployment and serves it; a triggered run
retrains the champion and gates it. Nothing but configuration (PREFECT_API_URL, MLFLOW_TRACKING_URI)
points the pipeline at the servers."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import (
    BIN,
    REPO,
    cli_env,
    free_port,
    healthy,
    mlflow_server,
    run_cli,
    start_service,
    stop_service,
    wait_for,
)

pytestmark = pytest.mark.e2e
NAME = "titanic_scheduled"
CRON = "0 3 * * *"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("scheduled")
    port, mlflow_port = free_port(), free_port()
    api, tracking = f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{mlflow_port}"
    env = {**cli_env(root), "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "MLFLOW_TRACKING_URI": tracking}
    store = root / "tracking_server"
    store.mkdir()
    processes = [
        start_service([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], root, env),
        mlflow_server(mlflow_port, store, root, env),
    ]
    try:
        wait_for(lambda: healthy(f"{api}/health"), 90, "the Prefect server did not answer /health")
        wait_for(lambda: healthy(f"{tracking}/health"), 90, "the MLflow server did not answer /health")
        yield {"root": root, "env": env, "api": api, "tracking": tracking, "store": store}
    finally:
        for process in processes:
            stop_service(process)


def _cli(args: list[str], server: dict, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "tabpilot"), *args], cwd=server["root"], env=server["env"], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_a_schedule_needs_a_server_and_a_valid_cron(tmp_path: Path) -> None:
    no_server = run_cli(["schedule", "--cron", CRON, "--data", "x.csv"], cwd=tmp_path, timeout=60)
    assert no_server.returncode == 2 and "prefect server start" in no_server.stderr


def test_a_served_schedule_retrains_the_champion_on_a_triggered_run(server: dict, titanic: pd.DataFrame) -> None:
    root = server["root"]
    titanic.to_csv(root / "titanic.csv", index=False)
    (root / "incoming").mkdir()
    titanic.sample(frac=1.0, random_state=1).to_csv(root / "incoming" / "week1.csv", index=False)
    trained = _cli(["train", "--data", "titanic.csv", "--target", "survived", "--name", NAME,
                    "--time-budget", "30", "--seed", "0"], server)
    assert trained.returncode == 0, trained.stderr[-3000:]
    bad = _cli(["schedule", "--cron", "every day", "--data", "incoming/*.csv", "--name", NAME], server, 60)
    assert bad.returncode == 2 and "not a cron expression" in bad.stderr

    served = subprocess.Popen([str(BIN / "tabpilot"), "schedule", "--cron", CRON, "--data", "incoming/*.csv",
                               "--name", NAME, "--time-budget", "30"], cwd=root, env=server["env"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deployment = f"tabpilot-retrain/retrain-{NAME}"
    try:
        def registered() -> bool:
            found = subprocess.run([str(BIN / "prefect"), "deployment", "inspect", deployment], cwd=root,
                                   env=server["env"], capture_output=True, text=True, timeout=60, check=False)
            return found.returncode == 0 and CRON in found.stdout

        wait_for(registered, 120, f"the deployment {deployment} with schedule {CRON} was not registered")
        run = subprocess.run([str(BIN / "prefect"), "deployment", "run", deployment, "--watch",
                              "--watch-timeout", "400"], cwd=root, env=server["env"], capture_output=True,
                             text=True, timeout=480, check=False)
        assert run.returncode == 0 and "Completed" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    finally:
        stop_service(served)

    summary = json.loads((root / "runs" / f"{NAME}-retrain" / "reports" / "retrain.json").read_text())
    assert summary["retrained"] is True and summary["champion_before"]["version"] == "1"
    assert summary["drift"]["drifted_features"] == []  # the same passengers, shuffled
    candidate = summary["candidate"]
    assert candidate["version"] == "2" and candidate["champion_score_on_same_split"] is not None
    # everything went to the tracking server: no local store, the models' files in its artifact store
    assert not (root / "mlruns" / "mlflow.db").exists()
    assert list((server["store"] / "artifacts").rglob("MLmodel"))
    client = MlflowClient(tracking_uri=server["tracking"], registry_uri=server["tracking"])
    aliases = {k: str(v) for k, v in client.get_registered_model(NAME).aliases.items()}
    assert set(aliases.values()) <= {"1", "2"} and "champion" in aliases
    expected = {"champion": "2", "previous": "1"} if summary["promoted"] else {"champion": "1", "challenger": "2"}
    assert aliases == expected


RACER = """
import json, sys, time
from tasks.promotion import promotion_lock
while time.time() < float(sys.argv[1]):
    time.sleep(0.01)
with promotion_lock("race_model"):
    entered = time.time()
    time.sleep(3)
print(json.dumps([entered, time.time()]))
"""


def test_promotions_on_a_prefect_server_take_turns(server: dict) -> None:
    # The tracking server has no lock: two racers that start together hold the server's slot in turn.
    start = time.time() + 20  # both past their imports, then both ask at once
    racers = [subprocess.Popen([str(BIN / "python"), "-c", RACER, str(start)], cwd=REPO, env=server["env"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    spans = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err[-2000:]
        spans.append(json.loads(out.strip().splitlines()[-1]))
    first, second = sorted(spans)
    assert second[0] >= first[1] - 0.05  # the second entered only after the first left
