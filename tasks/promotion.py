"""The promotion lock on a Prefect server: one slot of a global concurrency limit per model.

A remote MLflow tracking server offers no lock, so two retraining runs on different machines could
both gate against the same champion. When the flows talk to a Prefect server, its global
concurrency limit (one slot, per model name) serialises gating and promotion across machines;
without a server the library's own lock applies (a file lock beside a SQLite store).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_API_URL

from tabpilot.core.artifacts import RunPaths
from tabpilot.core.config import Config
from tabpilot.registry import model_versions, tracking

LOCK_TIMEOUT = 600.0


def limit_name(model: str) -> str:
    return f"tabpilot-promote-{model}"


def ensure_limit(name: str) -> None:
    """Create the one-slot limit on first use (a racer may create it first: that is fine)."""
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


@contextmanager
def server_lock(model: str) -> Iterator[None]:
    """Hold the model's promotion slot on the Prefect server, then the library's lock too (for a
    SQLite store shared by processes on this machine)."""
    ensure_limit(limit_name(model))
    with concurrency(limit_name(model), occupy=1, timeout_seconds=LOCK_TIMEOUT, strict=True), \
            tracking.promotion_lock(model):
        yield


def promotion_lock(model: str) -> Any:
    """The server's lock when a Prefect server is configured, else the library's."""
    return server_lock(model) if PREFECT_API_URL.value() else tracking.promotion_lock(model)


def register(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    return model_versions.register(cfg, paths, lock=promotion_lock)
