"""MLflow off the search's critical path: one thread does all of a search's logging, in order.

A tracking server that stops answering is retried for `tracking.wait_seconds` by MLflow itself
(tabpilot.registry.tracking); once it gives up, nothing more is sent, `down` turns true (the search
stops: its trials are journaled, nothing is lost) and `finish` raises the one line naming the fix.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from threading import Event
from typing import Any

from tabpilot.registry import tracking


class LogThread:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tabpilot-mlflow")
        self._futures: list[Future[Any]] = []
        self._down = Event()

    @property
    def down(self) -> bool:
        return self._down.is_set()

    def submit(self, call: Callable[..., Any], *args: Any) -> Future[Any]:
        future = self._executor.submit(self._guarded, call, *args)
        self._futures.append(future)
        return future

    def _guarded(self, call: Callable[..., Any], *args: Any) -> Any:
        if self.down:
            return None
        try:
            return call(*args)
        except Exception as error:
            if tracking.unreachable(error):
                self._down.set()
                return None
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def finish(self) -> None:
        """Wait for what is queued; a logging failure surfaces here, once the search is over."""
        self.close()
        if self.down:
            raise tracking.outage(self.run_dir)
        for future in self._futures:
            future.result()
