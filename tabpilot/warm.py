"""The warm server: imports what tabpilot's commands need once, then forks a copy of itself per command.

`tabpilot.launch` (the `tabpilot` command) connects to it over a Unix socket in a folder only this
user can open, and sends the command line, folder, environment and its standard streams. For each
command a monitor process is forked, which forks the command's process and reports its exit code;
the command's process takes the client's folder, environment and streams, refreshes what was read
from the environment at import (Prefect's settings and logging, the console, the MLflow URI), and
runs the CLI. The server stops once no command has arrived for IDLE_SECONDS, or when its code or
interpreter changes (a new key starts a new server; launch.py). `python -m tabpilot.warm stop`
stops every warm server of this user.

Forking is safe here because the server starts no thread of its own (only OpenBLAS's idle pool, which
handles forks) and runs no OpenMP region: it only imports, accepts and forks.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from tabpilot.launch import socket_dir

IDLE_SECONDS = float(os.environ.get("TABPILOT_WARM_IDLE_SECONDS", "1800"))
# What the commands import; each of these costs 1-5 s on 2 cores (benchmarks/results/commands.md).
PRELOAD = ("tabpilot.cli", "tabpilot.training.search_stage", "tabpilot.training.ensemble_stage",
           "tabpilot.data.prepare", "tabpilot.registry.model_versions",
           "tabpilot.registry.retraining", "tabpilot.registry.scoring", "tabpilot.registry.contracts",
           "tabpilot.core.plots", "tabpilot.report", "flows.training", "flows.retraining", "flows.server", "psutil",
           "matplotlib.pyplot",
           "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store")


def preload() -> None:
    """Import everything a command may need, under the CLI's own environment defaults."""
    import importlib

    from tabpilot import cli

    cli._environment()
    for module in PRELOAD:
        importlib.import_module(module)
    from tabpilot.data import validation
    from tabpilot.registry import tracking
    from tabpilot.search import estimators

    tracking._load()
    tracking.warm_caches()
    validation._import_gx()
    estimators.import_families()


def _child(conn: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
    """The command's process: the client's folder, environment and streams, then the CLI."""
    os.setpgid(0, 0)
    for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    conn.close()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    old = {id(sys.stdout), id(sys.stderr)}
    # The process's own streams, open until it ends.
    sys.stdin = sys.__stdin__ = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    _rebind_log_streams(old)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    from tabpilot import cli

    cli._environment()  # the CLI's defaults, which Prefect's logging reads, before it is set up again
    _refresh()

    cli.COMMAND_STARTED, cli.CLIENT_PID = float(request["started"]), int(request["client_pid"])
    main = cli.main

    try:
        main()
    finally:
        os._exit(1)  # main() ends the process itself; reaching here means it raised


def _rebind_log_streams(old: set[int]) -> None:
    """Log handlers made at import write to the server's log: point them at this process's stderr."""
    import logging

    loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values()
                                      if isinstance(v, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in old:
                handler.setStream(sys.stderr)


def _refresh() -> None:
    """What the preloaded modules read from the environment at import, read again from this one's."""
    from rich.console import Console

    from flows.server import refresh_settings
    from tabpilot import cli
    from tabpilot.registry import tracking

    refresh_settings()
    cli.console = Console(stderr=True)
    tracking.reset_user_uri()


def _monitor(conn: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
    """Fork the command, tell the client its pid, wait for it, send its exit code. A client that
    goes away (killed) takes its command with it."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        _child(conn, fds, request)
    for fd in fds:
        os.close(fd)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} pid {pid}: tabpilot {' '.join(request['argv'][1:])[:200]}",
          flush=True)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        readable, _, _ = select.select([conn], [], [], 0.05)
        if readable and not conn.recv(1):  # the client is gone: end its command's process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            _, status = os.waitpid(pid, 0)
            break
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps({"code": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
    os._exit(0)


def _accept(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    try:
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        while not message.endswith(b"\n"):
            more = conn.recv(1 << 20)
            if not more:
                raise ConnectionError("incomplete request")
            message += more
        request = json.loads(message)
    except (OSError, ValueError):
        conn.close()
        return
    if os.fork() == 0:
        listener.close()
        _monitor(conn, fds, request)
    conn.close()
    for fd in fds:
        os.close(fd)


def serve(path: Path) -> None:
    """Preload, listen on `path` and fork per command until idle; one server per path."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = path.parent.stat()
    if folder.st_uid != os.getuid() or folder.st_mode & 0o077:
        print(f"{path.parent} is not this user's alone: no warm server", flush=True)
        return  # anyone who can open the socket could run commands as this user
    lock = (path.parent / f"{path.stem}.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another server for this key is starting or running
    preload()
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    (path.parent / f"{path.stem}.pid").write_text(str(os.getpid()))
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        last = time.time()
        while time.time() - last < IDLE_SECONDS and path.exists():
            readable, _, _ = select.select([listener], [], [], 30.0)
            if readable:
                _accept(listener)
                last = time.time()
    finally:
        path.unlink(missing_ok=True)
        (path.parent / f"{path.stem}.pid").unlink(missing_ok=True)


def stop_all() -> int:
    """Stop every warm server of this user; how many were running."""
    stopped = 0
    for pid_file in socket_dir().glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
            stopped += 1
        pid_file.unlink(missing_ok=True)
    for sock in socket_dir().glob("*.sock"):
        sock.unlink(missing_ok=True)
    return stopped


if __name__ == "__main__":
    if sys.argv[1:] == ["stop"]:
        print(f"stopped {stop_all()} warm server(s)")
    else:
        serve(Path(sys.argv[1]))
