"""The local Prefect server that tabpilot starts once and later commands reuse, and its idle stop."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from flows import server

pytestmark = pytest.mark.e2e


def _until(check, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_one_server_serves_later_commands_and_stops_when_idle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("TABPILOT_PREFECT_IDLE_SECONDS", "4")  # read by the watcher it starts
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    try:
        server.connect()()
        url = server.running_url()
        assert url is not None and server.healthy(url)
        watcher = json.loads((server.home() / server.STATE).read_text())["pid"]
        assert server.connect()() is None and server.running_url() == url  # reused, not started again
        assert json.loads((server.home() / server.STATE).read_text())["pid"] == watcher
        with server.hold():  # a command using it keeps it up past the idle time
            time.sleep(8)
            assert server.healthy(url)
        assert _until(lambda: not server.healthy(url), 30), "an idle server stops itself"
        server.connect()()  # and the next command starts a new one
        assert server.running_url() is not None
    finally:
        server.stop()
        os.environ.pop("PREFECT_API_URL", None)  # connect() set it for the commands of this process
