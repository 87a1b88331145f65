"""Helpers shared by the tests: small frames made here, and running the CLI as a user would."""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def make_frame(n: int = 200, task: str = "binary", seed: int = 0) -> pd.DataFrame:
    """A small mixed-type table with missing values whose target depends on its features."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.uniform(0, 10, size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    signal = x1 + 0.3 * x2 + (colour == "red") * 1.5
    frame = pd.DataFrame({"x1": x1, "x2": x2, "colour": colour})
    frame.loc[rng.random(n) < 0.1, "x2"] = np.nan
    if task == "regression":
        frame["y"] = signal + rng.normal(scale=0.3, size=n)
    elif task == "binary":
        frame["y"] = np.where(signal + rng.normal(scale=0.5, size=n) > np.median(signal), "yes", "no")
    else:
        frame["y"] = pd.cut(signal, 3, labels=["low", "mid", "high"]).astype(str)
    return frame


def cli_env(home: Path) -> dict[str, str]:
    from tabpilot.registry import tracking

    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_REGISTRY_URI", None)
    # In-process tests bound MLflow's retries in this process's environment: a user's shell has no such
    # values, and a command would take them as the user's own (which win over tracking.wait_seconds).
    for name, value in tracking._BOUNDED.items():
        if env.get(name) == value:
            env.pop(name)
    # PREFECT_HOME is the session's (conftest.py): one local Prefect server serves every test's commands.
    env.update({"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"})
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `tabpilot` command as a user would (with `env` added to the environment)."""
    return subprocess.run([str(BIN / "tabpilot"), *args], check=False, cwd=cwd, env=cli_env(cwd) | (env or {}),
                          capture_output=True, text=True, timeout=timeout)


def load_nothing(tag: str) -> str:
    """A worker loader for pool tests: the workload is just a tag."""
    return tag


def sleep_job(workload: str, payload: dict) -> dict:
    import time

    if payload.get("fail"):
        raise ValueError("asked to fail")
    time.sleep(payload["seconds"])
    return {"status": "ok", "workload": workload, "seconds": payload["seconds"]}


class Served:
    """A running `tabpilot serve`: its port, and its answer to rows sent as `dataframe_split`."""

    def __init__(self, port: int, process: subprocess.Popen[str]) -> None:
        self.port, self.process = port, process

    def invoke(self, rows: pd.DataFrame, wait: float = 60.0) -> Any:
        """The server's JSON answer, waiting up to `wait` seconds for it to start answering."""
        body = json.dumps({"dataframe_split": rows.to_dict(orient="split")}).encode()
        deadline = time.time() + wait
        while True:
            request = urllib.request.Request(f"http://127.0.0.1:{self.port}/invocations", data=body,
                                             headers={"Content-Type": "application/json"})
            try:
                return json.loads(urllib.request.urlopen(request, timeout=5).read())
            except urllib.error.HTTPError:
                raise
            except OSError:  # not listening yet
                assert self.process.poll() is None, self.process.stderr.read() if self.process.stderr else ""
                assert time.time() < deadline, f"the scoring server did not answer within {wait:.0f} s"
                time.sleep(0.5)


@contextmanager
def served(model: str, cwd: Path, env: dict[str, str]) -> Iterator[Served]:
    """`tabpilot serve --model MODEL` on a free loopback port, stopped on leaving."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([str(BIN / "tabpilot"), "serve", "--model", model, "--port", str(port)], cwd=cwd,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield Served(port, process)
    finally:
        process.terminate()
        process.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(1.0)
    raise AssertionError(f"{what} within {seconds:.0f} s")


def healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


def start_service(command: list[str], root: Path, env: dict[str, str]) -> subprocess.Popen:  # type: ignore[type-arg]
    return subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop_service(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def mlflow_server(port: int, store: Path, root: Path, env: dict[str, str]) -> subprocess.Popen:  # type: ignore[type-arg]
    """A real MLflow tracking server on 127.0.0.1:`port`, its runs and artifacts in `store`."""
    return start_service([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                          "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination",
                          str(store / "artifacts")], root, env)


def journaled_trials(journal: Path) -> set[int]:
    """The ids of the journal's finished trials (their outcome written)."""
    found = set()
    for path in journal.glob("trial_*.pkl"):
        with contextlib.suppress(OSError, EOFError, pickle.UnpicklingError):  # renamed away meanwhile
            if pickle.loads(path.read_bytes())["outcome"] is not None:
                found.add(int(path.stem.removeprefix("trial_")))
    return found


def shipped_job(workload: Any, payload: dict) -> dict:
    """A pool test's job: what the worker's workload holds, and a 'model' written where it is asked to keep it."""
    import time

    time.sleep(payload.get("seconds", 0.0))
    if payload.get("keep_models"):
        Path(payload["keep_models"]).write_bytes((payload.get("models_bytes") or b"") + b"model")
    return {"status": "ok", "workload": workload, "models_kept": bool(payload.get("keep_models"))}


def load_shipped(tag: str, files: dict[str, bytes]) -> str:
    """A worker loader for cluster tests: the tag and the content it was shipped."""
    return f"{tag}:{files['data.txt'].decode()}"


@contextmanager
def dask_cluster(workers: int, root: Path) -> Iterator[tuple[str, list[subprocess.Popen]]]:  # type: ignore[type-arg]
    """A Dask cluster started as users start one (`dask scheduler`, `dask worker`), on the loopback:
    its address and the worker processes (each a nanny with one single-threaded worker)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "DASK_TEMPORARY_DIRECTORY": str(root)}
    processes = [start_service([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                "--no-dashboard"], root, env)]
    processes += [start_service([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                 "--no-dashboard", "--host", "127.0.0.1"], root, env) for _ in range(workers)]
    try:
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
        yield address, processes[1:]
    finally:
        for process in processes:
            stop_service(process)
