"""The warm server (tabpilot.warm): a command it serves behaves as one the CLI runs itself."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tabpilot.launch import server_key, socket_dir, socket_path
from tests.helpers import BIN, cli_env, run_cli

pytestmark = pytest.mark.e2e


def _server_ready(cwd: Path, timeout: float = 180.0) -> Path:
    """Start the session's warm server with a cheap command, and wait until it listens."""
    path = socket_path(server_key(cli_env(cwd)))
    if not path.exists():
        run_cli(["models", "--name", "absent"], cwd)
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, "the warm server did not start listening"
        time.sleep(0.5)
    return path


def _served_pids(log_from: int) -> list[int]:
    text = (socket_dir() / "warm.log").read_text()[log_from:]
    return [int(pid) for pid in re.findall(r"pid (\d+): tabpilot", text)]


def test_a_warm_command_answers_as_a_cold_one(tmp_path: Path) -> None:
    _server_ready(tmp_path)
    before = (socket_dir() / "warm.log").stat().st_size
    warm = run_cli(["models", "--name", "absent"], tmp_path)
    cold = run_cli(["models", "--name", "absent"], tmp_path, env={"TABPILOT_WARM": "0"})
    assert len(_served_pids(before)) == 1  # the first went through the server, the second did not
    assert warm.returncode == cold.returncode == 2
    assert warm.stderr == cold.stderr
    assert "no registered model 'absent'" in warm.stderr
    usage = run_cli(["models", "--nmae", "x"], tmp_path)
    assert usage.returncode == 2 and "No such option" in usage.stderr and "Traceback" not in usage.stderr


@pytest.mark.parametrize(("how", "code"), [(signal.SIGINT, 130), (signal.SIGKILL, None)])
def test_stopping_the_command_stops_what_it_started(tmp_path: Path, titanic_csv: Path, how: int,
                                                    code: int | None) -> None:
    _server_ready(tmp_path)
    before = (socket_dir() / "warm.log").stat().st_size
    client = subprocess.Popen([str(BIN / "tabpilot"), "train", "--data", str(titanic_csv), "--target", "survived",
                               "--time-budget", "120", "--name", "stopped"], cwd=tmp_path, env=cli_env(tmp_path),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "runs" / "stopped" / "data").exists():  # the flow has begun its stages
        assert time.time() < deadline and client.poll() is None, "the train did not start"
        time.sleep(0.2)
    (pid,) = _served_pids(before)
    time.sleep(2)
    client.send_signal(how)
    returned = client.wait(60)
    if code is not None:
        assert returned == code  # Ctrl-C reached the command, which ended as a cold one does
    deadline = time.time() + 30
    while _group_alive(pid):  # the command and its search's workers, all in its process group
        assert time.time() < deadline, "the command's processes outlived it"
        time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_key_follows_code_and_import_time_settings_only(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert server_key(env | {"MLFLOW_TRACKING_URI": "sqlite:///x.db"}) == server_key(env)
    assert server_key(env | {"OMP_NUM_THREADS": "3"}) != server_key(env)
