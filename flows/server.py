"""A local Prefect server that tabpilot starts once and later commands reuse.

Prefect's ephemeral mode starts a server inside every command: 4-5 s with a database that exists,
7-10 s with a new one, before the first stage runs. Here the first command that needs Prefect
starts `prefect server start` in the background (its own session, its log beside its database)
and every later command, in any folder, connects to it in milliseconds. A user's own
PREFECT_API_URL always wins and is never managed.

The server stops itself once no command has used it for IDLE_SECONDS: every command holds a shared
lock on `tabpilot-server.inuse` while it runs, and the watcher stops the server only when it can
take that lock exclusively. Run this module (`python -m flows.server`) to start the watcher by hand.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tabpilot.core.errors import ServiceError

IDLE_SECONDS = float(os.environ.get("TABPILOT_PREFECT_IDLE_SECONDS", "1800"))


def start_timeout() -> float:
    """Seconds to wait for a starting server (a cold start on a busy 2-core machine took up to 16 s);
    read when used, since a warm server imported this module before the command's environment."""
    return float(os.environ.get("TABPILOT_PREFECT_START_TIMEOUT", "90"))

STATE, LOCK = "tabpilot-server.json", "tabpilot-server.lock"
IN_USE, LOG = "tabpilot-server.inuse", "tabpilot-server.log"


def home() -> Path:
    """Prefect's home, where the server's database, state and log live (PREFECT_HOME or ~/.prefect)."""
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def running_url() -> str | None:
    """The managed server's API URL if it answers, else None."""
    state = home() / STATE
    with contextlib.suppress(OSError, ValueError, KeyError):
        url = str(json.loads(state.read_text())["url"])
        if healthy(url):
            return url
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, mode)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def hold() -> Iterator[None]:
    """Tell the watcher a command uses the server: a shared lock, released when the command ends."""
    path = home() / IN_USE
    with _locked(path, fcntl.LOCK_SH):
        os.utime(path)
        try:
            yield
        finally:
            os.utime(path)  # idle time counts from the end of the last command


def connect() -> Callable[[], None]:
    """Point PREFECT_API_URL at the managed server, starting one if none answers, before Prefect is
    imported (it reads its settings then). Returns a function that waits until the server answers,
    so the caller can import its flows meanwhile."""
    url = running_url()
    if url:
        os.environ["PREFECT_API_URL"] = url
        return lambda: None
    with _locked(home() / LOCK, fcntl.LOCK_EX):  # two commands at once start one server
        url = running_url()
        if url:
            os.environ["PREFECT_API_URL"] = url
            return lambda: None
        port = _free_port()
        url = f"http://127.0.0.1:{port}/api"
        with (home() / LOG).open("ab") as log:
            env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": url}
            watcher = subprocess.Popen([sys.executable, "-m", "flows.server", str(port)], stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=log, env=env, start_new_session=True,
                                       cwd=Path(__file__).resolve().parents[1])
        (home() / STATE).write_text(json.dumps({"url": url, "pid": watcher.pid}))
    os.environ["PREFECT_API_URL"] = url

    def ready() -> None:
        timeout = start_timeout()
        deadline = time.time() + timeout
        while time.time() < deadline and watcher.poll() is None:
            if healthy(url):
                return
            time.sleep(0.1)
        stop()
        raise ServiceError(f"Prefect's local server did not answer within {timeout:g} s (log: "
                                f"{home() / LOG}): run again, or start `prefect server start` and set PREFECT_API_URL")
    return ready


def refresh_settings() -> None:
    """Read Prefect's settings and logging configuration again from this process's environment and
    streams: a warm server (tabpilot.warm) imported Prefect before the command's environment existed."""
    from prefect.context import refresh_global_settings_context
    from prefect.logging.configuration import setup_logging

    refresh_global_settings_context()
    setup_logging(incremental=False)


def run(flow: Callable[..., Any], *args: Any) -> Any:
    """Run a flow on the server; without heartbeats, whose thread costs ~1 s at every flow's exit."""
    from prefect.context import refresh_global_settings_context
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    # Prefect read its settings when it was imported, which a warm server did before `connect`.
    refresh_global_settings_context()
    with hold(), temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return flow(*args)


def stop() -> bool:
    """Stop the managed server (and its watcher); whether one was running."""
    state = home() / STATE
    with contextlib.suppress(OSError, ValueError, KeyError):
        pid = int(json.loads(state.read_text())["pid"])
        state.unlink()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
            return True
    return False


def _watch(port: int) -> None:
    """Run the server; stop it once no command has held the in-use lock for IDLE_SECONDS."""
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], stdin=subprocess.DEVNULL)
    signal.signal(signal.SIGTERM, lambda *_: (server.terminate(), sys.exit(0)))
    url = f"http://127.0.0.1:{port}/api"
    while server.poll() is None and not healthy(url):  # idle time counts once it answers
        time.sleep(0.2)
    in_use = home() / IN_USE
    in_use.touch()
    while server.poll() is None:
        time.sleep(min(30.0, IDLE_SECONDS / 4))
        with in_use.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a command is using the server
            idle = time.time() - in_use.stat().st_mtime
            fcntl.flock(handle, fcntl.LOCK_UN)
        if idle > IDLE_SECONDS:
            server.terminate()
            server.wait(30)
            return


if __name__ == "__main__":
    if sys.argv[1:] == ["stop"]:
        print("stopped" if stop() else "no managed server was running")
    else:
        _watch(int(sys.argv[1]))
