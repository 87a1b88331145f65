"""Trials on a Dask cluster started as users start one (issue 22): the data goes to each worker once
through Dask, not through a shared disk; kept fold models come back to the search's machine; a
worker killed mid-trial loses only that trial and the pool goes on."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tabpilot.search.workers import open_pool
from tests.helpers import dask_cluster, load_shipped, shipped_job

pytestmark = pytest.mark.slow  # starts a scheduler and worker processes


def _drain(pool, expected: int, limit: float = 120) -> dict:  # type: ignore[no-untyped-def]
    outcomes, end = {}, time.time() + limit
    while len(outcomes) < expected and time.time() < end:
        outcomes.update({o.job_id: o for o in pool.wait(timeout=0.5)})
    return outcomes


def test_a_cluster_gets_the_data_once_sends_models_back_and_survives_a_killed_worker(tmp_path: Path) -> None:
    with dask_cluster(2, tmp_path) as (address, workers):
        # The content exists only in this process: a worker can only have it from Dask.
        pool = open_pool("process", 2, load_shipped, ("run",), address, {"data.txt": b"shipped rows"})
        try:
            assert pool.idle() == 2
            keep = tmp_path / "search" / "trial_0.pkl"
            pool.submit(0, shipped_job, {"keep_models": str(keep)}, time.time() + 60)
            first = _drain(pool, 1)[0]
            assert first.result == {"status": "ok", "workload": "run:shipped rows", "models_kept": True}
            assert keep.read_bytes() == b"model"
            # A worker killed mid-trial (its process, as the OOM killer or a lost machine would).
            for job in (1, 2):
                pool.submit(job, shipped_job, {"seconds": 6}, time.time() + 120)
            time.sleep(2)
            from distributed import Client

            with Client(address) as client:
                pids = list(client.run(os.getpid).values())
            os.kill(pids[0], signal.SIGKILL)
            outcomes = _drain(pool, 2)
            assert set(outcomes) == {1, 2}  # run again elsewhere, or reported failed: never lost
            assert all(o.result is not None or o.error for o in outcomes.values())
            pool.submit(3, shipped_job, {}, time.time() + 60)
            assert _drain(pool, 1)[3].result["workload"] == "run:shipped rows"
        finally:
            pool.close()
