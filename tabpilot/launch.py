"""The `tabpilot` command's entry point: hands the command to a warm process when one is running.

Importing what a command needs (pandas, scikit-learn, Prefect, MLflow, Great Expectations) takes
5-10 s on 2 cores, every time. A warm server (`tabpilot.warm`) imports it once and forks a copy of
itself per command, which starts with all of it in memory; this module, which imports only the
standard library, passes it the command line, the folder, the environment and the terminal's file
descriptors, forwards signals, and exits with the command's exit code. Without a server it runs the
command itself, as before, and starts one in the background as it ends. TABPILOT_WARM=0 turns
this off (the Docker image does: each container runs one command).
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

# Commands that run to completion and gain from warm imports; `serve` and `schedule` run until
# stopped, `--verbose` configures Prefect's logging at import, `--help` needs nothing heavy.
WARM_COMMANDS = {"train", "predict", "validate", "models", "rollback", "stage", "retrain", "export"}
COLD_FLAGS = {"--verbose", "--help"}
# Variables read when the warm server imports its modules; a command with other values gets its own.
IMPORT_TIME_ENV = ("PYTHON", "OMP_", "OPENBLAS_", "MKL_", "KMP_", "GX_", "PREFECT_PROFILE", "PREFECT_LOGGING_",
                   "TABPILOT_WARM")
SOURCES = ("tabpilot", "flows", "tasks")
CONNECT_TIMEOUT = 2.0


def socket_dir() -> Path:
    """Where the warm servers' sockets live: TABPILOT_WARM_DIR, else a folder of this user's in /tmp."""
    return Path(os.environ.get("TABPILOT_WARM_DIR") or Path(tempfile.gettempdir()) / f"tabpilot-warm-{os.getuid()}")


def server_key(env: dict[str, str] | None = None) -> str:
    """Which warm server fits this process: same interpreter, packages and code, same import-time settings."""
    env = dict(os.environ) if env is None else env
    # realpath: `../.venv/bin/python` and `.venv/bin/python` are one interpreter
    digest = hashlib.sha256(f"{os.path.realpath(sys.executable)}\0{os.path.realpath(sys.prefix)}".encode())
    root = Path(__file__).resolve().parents[1]
    for package in SOURCES:
        for path in sorted((root / package).rglob("*.py")):
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\0".encode())
    for entry in sys.path:  # installing or removing a package changes its folder's mtime
        if entry.endswith("site-packages") and os.path.isdir(entry):
            digest.update(f"{entry}\0{os.stat(entry).st_mtime_ns}\0".encode())
    for name in sorted(env):
        if name.startswith(IMPORT_TIME_ENV):
            digest.update(f"{name}={env[name]}\0".encode())
    return digest.hexdigest()[:16]


def socket_path(key: str) -> Path:
    return socket_dir() / f"{key}.sock"


def _eligible(argv: list[str]) -> bool:
    return (os.environ.get("TABPILOT_WARM", "1") != "0" and len(argv) > 1 and argv[1] in WARM_COMMANDS
            and not COLD_FLAGS & set(argv))


def _start_server(path: Path) -> None:
    """Start a warm server for `path` in its own session; it outlives this command."""
    import subprocess

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (path.parent / "warm.log").open("ab") as log:
        subprocess.Popen([sys.executable, "-m", "tabpilot.warm", str(path)], stdin=subprocess.DEVNULL, stdout=log,
                         stderr=log, start_new_session=True, cwd=path.parent)


def _connect(path: Path) -> socket.socket | None:
    if not path.exists():
        return None
    folder = path.parent.stat()
    if folder.st_uid != os.getuid() or folder.st_mode & 0o077:  # a server only this user can reach
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(CONNECT_TIMEOUT)
    try:
        client.connect(str(path))
    except OSError:
        client.close()
        return None
    return client


def _run_warm(client: socket.socket, started: float) -> int | None:
    """Send the command, forward signals to it, and return its exit code; None when the server went
    away before the command started (the caller then runs it itself)."""
    request = {"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ), "started": started,
               "client_pid": os.getpid()}
    try:
        socket.send_fds(client, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
        client.settimeout(None)
        reader = client.makefile("rb")
        pid = int(json.loads(reader.readline())["pid"])
    except (OSError, ValueError, KeyError):
        return None

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    try:
        return int(json.loads(reader.readline())["code"])
    except (OSError, ValueError, KeyError):  # it died without a word (killed): say so, as a shell would
        print("tabpilot: the command's process ended without an exit code (killed?)", file=sys.stderr)
        return 1


def main() -> None:
    started = time.time()
    if _eligible(sys.argv):
        path = socket_path(server_key())
        client = _connect(path)
        if client is None:
            # Started as this command ends: its imports (about 10 s of CPU) would slow this one down.
            import atexit

            atexit.register(_start_server, path)
        else:
            code = _run_warm(client, started)
            if code is not None:
                os._exit(code)
    from tabpilot.cli import main as cold_main

    cold_main()


if __name__ == "__main__":
    main()
