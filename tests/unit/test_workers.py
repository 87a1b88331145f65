import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tabpilot.search.workers import ProcessPool
from tests.helpers import load_nothing, sleep_job


def _drain(pool: ProcessPool, limit: float = 30) -> list:
    outcomes, end = [], time.time() + limit
    while pool.busy() and time.time() < end:
        outcomes += pool.wait(timeout=0.5)
    return outcomes


def test_pool_runs_jobs_kills_overdue_ones_and_reports_failures() -> None:
    pool = ProcessPool(2, load_nothing, ("data",))
    try:
        now = time.time()
        pool.submit("quick", sleep_job, {"seconds": 0.1}, now + 20)
        pool.submit("slow", sleep_job, {"seconds": 60}, now + 8)
        outcomes = {o.job_id: o for o in _drain(pool)}
        assert outcomes["quick"].result == {"status": "ok", "workload": "data", "seconds": 0.1}
        assert outcomes["slow"].timed_out and outcomes["slow"].result is None
        assert time.time() - now < 20  # the 60 s job was killed, not waited for
        # The killed worker was replaced: the pool still has two working slots.
        assert pool.idle() == 2
        pool.submit("bad", sleep_job, {"fail": True}, time.time() + 20)
        pool.submit("again", sleep_job, {"seconds": 0.1}, time.time() + 20)
        outcomes = {o.job_id: o for o in _drain(pool)}
        assert outcomes["bad"].error == "ValueError: asked to fail"
        assert outcomes["again"].result is not None
    finally:
        pool.close()


@pytest.mark.slow  # starts a Dask cluster
def test_dask_pool_runs_the_same_jobs_on_a_local_cluster(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`compute.backend: dask` takes the same jobs; an overdue job is reported and its result dropped."""
    from tabpilot.search.workers import open_pool

    monkeypatch.setenv("DASK_TEMPORARY_DIRECTORY", str(tmp_path))
    pool = open_pool("dask", 2, load_nothing, ("cluster",))
    try:
        assert pool.idle() == 2
        now = time.time()
        pool.submit("quick", sleep_job, {"seconds": 0.1}, now + 30)
        pool.submit("slow", sleep_job, {"seconds": 20}, now + 3)
        outcomes = {o.job_id: o for o in _drain(pool)}  # type: ignore[arg-type]
        assert outcomes["quick"].result == {"status": "ok", "workload": "cluster", "seconds": 0.1}
        assert outcomes["slow"].timed_out
    finally:
        pool.close()


ORPHANED = """
import sys, time
from tabpilot.search.workers import ProcessPool
from tests.helpers import load_nothing, sleep_job
pool = ProcessPool(2, load_nothing, ("data",))
start = time.time()
for job in ("a", "b"):
    pool.submit(job, sleep_job, {"seconds": 120}, time.time() + 600)
while time.time() < start + 4:  # the jobs are handed over as the workers come up
    pool.wait(0.2)
print(*[w.process.pid for w in pool._workers], flush=True)
time.sleep(600)
"""


def test_the_workers_of_a_killed_search_stop_instead_of_finishing_their_trials() -> None:
    """`kill -9` of the search's process leaves no worker running a trial into a run that a resumed
    search owns from then on."""
    search = subprocess.Popen([sys.executable, "-c", ORPHANED], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).parents[2])
    try:
        workers = [int(pid) for pid in search.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(workers) == 2 and all(psutil.pid_exists(pid) for pid in workers)
        os.kill(search.pid, signal.SIGKILL)
        search.wait()
        deadline = time.time() + 10
        while any(_running(pid) for pid in workers) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(_running(pid) for pid in workers)
    finally:
        search.kill()


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
