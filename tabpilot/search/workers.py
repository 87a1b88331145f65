"""Where trials run: a pool of local worker processes (default) or a Dask cluster.

Both take jobs `fn(workload, payload)` with a deadline and hand back outcomes. The local pool kills
a worker whose job overruns its deadline and starts a fresh one, so the search never exceeds its
share of the budget. A Dask cluster cannot kill a running task: an overdue job is cancelled and its
result ignored, and its worker stays busy until the job ends.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

Job = Callable[[Any, dict[str, Any]], dict[str, Any]]
Loader = Callable[..., Any]


@dataclass
class Outcome:
    job_id: Any
    result: dict[str, Any] | None
    error: str | None = None
    elapsed: float = 0.0

    @property
    def timed_out(self) -> bool:
        return self.error == "timeout"


class Pool(Protocol):
    def idle(self) -> int: ...
    def busy(self) -> int: ...
    def submit(self, job_id: Any, fn: Job, payload: dict[str, Any], deadline: float) -> None: ...
    def wait(self, timeout: float) -> list[Outcome]: ...
    def close(self) -> None: ...


def _worker_main(conn: Connection, loader: Loader, args: tuple[Any, ...]) -> None:
    # One thread per worker: the pool already runs one worker per core.
    import warnings

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True, name="tabpilot-parent-watch").start()
    # Convergence and similar warnings of single trials are noise on the user's console.
    warnings.simplefilter("ignore")
    if loader is None:  # started early (`prestart`): import what trials need, then wait for the data
        import tabpilot.search.evaluate  # noqa: F401

        _, loader, args = conn.recv()
    workload = loader(*args)
    conn.send(("ready", True, None))
    while True:
        message = conn.recv()
        if message is None:
            return
        job_id, fn, payload = message
        try:
            conn.send((job_id, True, fn(workload, payload)))
        except Exception as error:  # a failed trial is a result, not a crash of the search
            conn.send((job_id, False, f"{type(error).__name__}: {error}"))


def _exit_with(parent: int) -> None:
    """A worker outlives no search: once the process that started it is gone (`kill -9`), it stops
    at once, mid-trial or not, and writes nothing more into a run a resumed search now owns."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


@dataclass
class _Worker:
    process: Any  # None: a slot whose worker starts when a job needs it
    conn: Connection | None
    job_id: Any = None
    deadline: float = 0.0
    started: float = 0.0
    ready: bool = False
    pending: tuple[Any, ...] | None = field(default=None)


def _spawn(loader: Loader | None, args: tuple[Any, ...], early: bool = False) -> _Worker:
    # Fork is unsafe once OpenMP or threads are running; a warm server's fork at the command's
    # start has neither, and its copy starts with every estimator imported (tabpilot.warm).
    warm = early and threading.active_count() == 1 and "tabpilot.search.evaluate" in sys.modules
    context = mp.get_context("fork" if warm else "spawn")
    parent, child = context.Pipe()
    env_backup = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    process = context.Process(target=_worker_main, args=(child, loader, args), daemon=True)
    process.start()
    if env_backup is None:
        os.environ.pop("OMP_NUM_THREADS")
    else:
        os.environ["OMP_NUM_THREADS"] = env_backup
    child.close()
    return _Worker(process, parent)


_PRESTARTED: list[_Worker] = []


def prestart(n_workers: int) -> None:
    """Start `n_workers` worker processes now, before their data exists: their imports (1-2 s each)
    overlap the orchestrator's start-up, and the next ProcessPool adopts them."""
    _PRESTARTED.extend(_spawn(None, (), early=True) for _ in range(n_workers - len(_PRESTARTED)))


class ProcessPool:
    """Worker processes started with `spawn`; those `prestart` started are adopted first."""

    def __init__(self, n_workers: int, loader: Loader, args: tuple[Any, ...]) -> None:
        self._loader, self._args = loader, args
        self._workers: list[_Worker] = []
        while _PRESTARTED and len(self._workers) < n_workers:
            worker = _PRESTARTED.pop(0)
            if worker.process.is_alive():
                worker.conn.send(("load", loader, args))
                self._workers.append(worker)
        self._workers += [self._start() for _ in range(n_workers - len(self._workers))]

    def _start(self) -> _Worker:
        return _spawn(self._loader, self._args)

    def idle(self) -> int:
        return sum(1 for w in self._workers if w.job_id is None)

    def busy(self) -> int:
        return len(self._workers) - self.idle()

    def submit(self, job_id: Any, fn: Job, payload: dict[str, Any], deadline: float) -> None:
        index, worker = next((i, w) for i, w in enumerate(self._workers) if w.job_id is None)
        if worker.process is None:
            worker = self._workers[index] = self._start()
        worker.job_id, worker.deadline, worker.started = job_id, deadline, time.time()
        if worker.ready:
            worker.conn.send((job_id, fn, payload))
        else:  # still loading its data: send once it says it is ready
            worker.pending = (job_id, fn, payload)

    def wait(self, timeout: float) -> list[Outcome]:
        """Outcomes of finished or overdue jobs; returns after at most `timeout` seconds."""
        busy = [w for w in self._workers if w.job_id is not None]
        if not busy:
            return []
        nearest = min(w.deadline for w in busy) - time.time()
        ready = wait([w.conn for w in busy], timeout=max(0.0, min(timeout, nearest)))
        outcomes = []
        for worker in busy:
            if worker.conn in ready:
                outcome = self._receive(worker)
                if outcome is not None:
                    outcomes.append(outcome)
            elif time.time() >= worker.deadline:
                outcomes.append(Outcome(worker.job_id, None, "timeout", time.time() - worker.started))
                self._replace(worker)
        return outcomes

    def _receive(self, worker: _Worker) -> Outcome | None:
        try:
            job_id, ok, value = worker.conn.recv()
        except (EOFError, OSError):
            outcome = Outcome(worker.job_id, None, "worker died (out of memory?)", time.time() - worker.started)
            self._replace(worker)
            return outcome
        if job_id == "ready":
            worker.ready = True
            if worker.pending is not None:
                worker.conn.send(worker.pending)
                worker.pending = None
            return None
        elapsed = time.time() - worker.started
        worker.job_id = None
        return Outcome(job_id, value if ok else None, None if ok else value, elapsed)

    def _replace(self, worker: _Worker) -> None:
        worker.process.kill()
        worker.process.join(5)
        worker.conn.close()
        # Its successor starts with the next job: trials are killed at the search's deadline, where a
        # new worker's imports (2-3 s of CPU) would only delay the search's end.
        self._workers[self._workers.index(worker)] = _Worker(None, None)

    def close(self) -> None:
        started = [w for w in self._workers if w.process is not None]
        for worker in started:
            try:
                worker.conn.send(None)
            except (OSError, ValueError):
                pass
        for worker in started:
            worker.process.join(2)
            if worker.process.is_alive():
                worker.process.kill()


_DASK_CACHE: dict[tuple[Any, ...], Any] = {}


def _dask_run(fn: Job, loader: Loader, args: tuple[Any, ...], payload: dict[str, Any], key: str) -> dict[str, Any]:
    """Runs on a Dask worker: load the workload once per worker process, by `key` (the loader and its
    arguments but the shipped files). A worker may be another machine: fold models to keep are
    written to its own disk and sent back as bytes (`models_bytes`), and a bag to add to arrives so."""
    if key not in _DASK_CACHE:
        _DASK_CACHE[key] = loader(*args)
    if not payload.get("keep_models"):
        return fn(_DASK_CACHE[key], payload)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="tabpilot-models-") as folder:
        local = Path(folder) / "models.pkl"
        if payload.get("models_bytes"):
            local.write_bytes(payload["models_bytes"])
        result = fn(_DASK_CACHE[key], {**payload, "keep_models": str(local), "models_bytes": None})
        if result.get("models_kept") and local.exists():
            result["models_bytes"] = local.read_bytes()
    return result


class DaskPool:
    """Jobs on a Dask cluster: a remote scheduler by address, or a LocalCluster of processes."""

    def __init__(self, n_workers: int, loader: Loader, args: tuple[Any, ...], address: str | None,
                 ship: Any = None) -> None:
        from distributed import Client, LocalCluster

        if address:
            self._client = Client(address, timeout="20s")
            self._cluster = None
            if ship is not None:  # to every worker once, before any job: the loader's last argument
                args = (*args, self._client.scatter([ship], broadcast=True, hash=False)[0])
        else:
            self._cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                         dashboard_address=":0")
            self._client = Client(self._cluster)
        self._slots = sum(self._client.nthreads().values()) or n_workers
        self._key = f"{loader.__module__}.{loader.__name__}{args[:-1] if ship is not None and address else args!r}"
        self._loader, self._args = loader, args
        self._running: dict[Any, tuple[Any, float, float]] = {}

    def idle(self) -> int:
        return max(0, self._slots - len(self._running))

    def busy(self) -> int:
        return len(self._running)

    def submit(self, job_id: Any, fn: Job, payload: dict[str, Any], deadline: float) -> None:
        keep = payload.get("keep_models")
        if keep and payload.get("repeat") and os.path.exists(keep):  # a late repeat adds to the bag it sends
            with open(keep, "rb") as bag:
                payload = {**payload, "models_bytes": bag.read()}
        future = self._client.submit(_dask_run, fn, self._loader, self._args, payload, self._key, pure=False)
        self._running[job_id] = (future, deadline, time.time(), keep)

    def wait(self, timeout: float) -> list[Outcome]:
        from distributed import wait as dask_wait

        if not self._running:
            return []
        nearest = min(d for _, d, _, _ in self._running.values()) - time.time()
        futures = [f for f, _, _, _ in self._running.values()]
        try:
            dask_wait(futures, timeout=max(0.01, min(timeout, nearest)), return_when="FIRST_COMPLETED")
        except TimeoutError:  # dask's wait raises when nothing finished in time: not an error here
            pass
        outcomes = []
        for job_id, (future, deadline, started, keep) in list(self._running.items()):
            elapsed = time.time() - started
            if future.done():
                del self._running[job_id]
                try:
                    outcomes.append(Outcome(job_id, _kept_here(future.result(), keep), None, elapsed))
                except Exception as error:
                    outcomes.append(Outcome(job_id, None, f"{type(error).__name__}: {error}", elapsed))
            elif time.time() >= deadline:
                future.cancel()
                del self._running[job_id]
                outcomes.append(Outcome(job_id, None, "timeout", elapsed))
        return outcomes

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _kept_here(result: dict[str, Any], keep: str | None) -> dict[str, Any]:
    """A job's fold models, sent back as bytes, written where the search keeps them."""
    data = result.pop("models_bytes", None) if isinstance(result, dict) else None
    if data is not None and keep:
        staged = f"{keep}.part"
        os.makedirs(os.path.dirname(keep), exist_ok=True)
        with open(staged, "wb") as sink:
            sink.write(data)
        os.replace(staged, keep)
    return result


def open_pool(backend: str, n_workers: int, loader: Loader, args: tuple[Any, ...],
              address: str | None = None, ship: Any = None) -> Pool:
    """Local worker processes, or a Dask cluster (`backend: dask`, or an `address`). To a cluster at an
    address (machines that may not share this disk) `ship` goes to every worker once, as the loader's
    last argument."""
    if backend == "dask" or address:
        return DaskPool(n_workers, loader, args, address, ship)
    return ProcessPool(n_workers, loader, args)


def run_each(pool: Pool, keys: list[Any], job: Callable[[Any], tuple[Job, dict[str, Any], float]]) -> Iterator[Outcome]:
    """One job per key, submitted in order as workers free up, each made by `job(key)` (function,
    payload, deadline) only when it is submitted; yields the outcomes as they arrive. The caller sees
    each outcome before the next job is made."""
    pending, running = list(keys), 0
    while pending or running:
        while pending and pool.idle() > 0:
            key = pending.pop(0)
            fn, payload, deadline = job(key)
            pool.submit(key, fn, payload, deadline)
            running += 1
        for outcome in pool.wait(timeout=1.0):
            running -= 1
            yield outcome
