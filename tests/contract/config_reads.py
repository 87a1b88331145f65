"""Record which configuration keys a stage really reads, by running it.

A `Recorder` stands in for a `Config` (or one of its sections): every field read is logged as its
dotted `params.yaml` key. `InlinePool` replaces the worker pools so that the trials and refits run
in this process, on a recorded config rebuilt from the dict the workers are sent: reads made only
in workers (the folds, the fold models kept for bagging) count for the stage that started them.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel

# Imported before tracking is patched: registry binds `tracking.promotion_lock` as a default argument.
from tabpilot.core import config
from tabpilot.core.config import Config
from tabpilot.data import prepare  # noqa: F401
from tabpilot.registry import model_versions, tracking  # noqa: F401
from tabpilot.search import workers  # noqa: F401
from tabpilot.training import ensemble_stage, search_stage  # noqa: F401


@dataclass
class Reads:
    """What one stage read: dotted keys ("" is the whole config), and whole-config dumps by caller."""

    keys: set[str] = field(default_factory=set)
    # (caller, dict) of each to_dict(); a dict handed to the workers is dropped, its reads being followed
    dumps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    mlflow_calls: set[str] = field(default_factory=set)  # tabpilot.registry.tracking functions called


class Recorder:
    """Attribute access to a pydantic model that logs each field read by its YAML key.

    A nested section comes back recorded too; any other attribute (a method such as `model_dump`,
    or pickling the section into a model) counts as reading the whole section.
    """

    def __init__(self, target: BaseModel, prefix: str, reads: Reads) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_reads", reads)

    def __getattr__(self, name: str) -> Any:
        target, prefix, reads = self._target, self._prefix, self._reads
        value = getattr(target, name)
        fields = type(target).model_fields
        if name in fields:
            key = f"{prefix}{fields[name].alias or name}"
            if isinstance(value, BaseModel):
                return Recorder(value, f"{key}.", reads)
            reads.keys.add(key)
            return value
        if name == "to_dict" and not prefix:
            return self._to_dict
        reads.keys.add(prefix.rstrip("."))
        return value

    def _to_dict(self) -> dict[str, Any]:
        dumped = self._target.to_dict()
        self._reads.dumps.append((sys._getframe(1).f_code.co_name, dumped))
        return dumped

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Pickled into a model or sent elsewhere: the whole section travels, and pickles as itself.
        self._reads.keys.add(self._prefix.rstrip("."))
        return self._target.__reduce_ex__(protocol)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._prefix}{name}: the configuration is frozen")


class InlinePool:
    """The worker pool's interface, run in this process: a job runs when it is submitted.

    The loader's arguments include `cfg.to_dict()`; while it runs, `Config.model_validate` returns a
    Recorder, so the worker's reads are logged like the stage's own.
    """

    def __init__(self, n_workers: int, loader: Any, args: tuple[Any, ...], reads: Reads) -> None:
        self._slots = n_workers
        self._done: list[workers.Outcome] = []
        sent = [dump for dump in reads.dumps if any(arg is dump[1] for arg in args)]
        real = Config.model_validate
        rebuilt: list[Recorder] = []

        def recorded(obj: Any, *rest: Any, **kwargs: Any) -> Any:
            model = real(obj, *rest, **kwargs)
            rebuilt.append(Recorder(model, "", reads))
            return rebuilt[-1]

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Config, "model_validate", recorded)
            self._workload = loader(*args)
        if sent:
            assert rebuilt, "the workers got the config as a dict but did not rebuild it with Config.model_validate"
            reads.dumps[:] = [dump for dump in reads.dumps if all(dump is not s for s in sent)]

    def idle(self) -> int:
        return max(0, self._slots - len(self._done))

    def busy(self) -> int:
        return len(self._done)

    def submit(self, job_id: Any, fn: Any, payload: dict[str, Any], deadline: float) -> None:
        started = time.time()
        try:
            outcome = workers.Outcome(job_id, fn(self._workload, payload), None, time.time() - started)
        except Exception as error:  # as a worker reports it
            outcome = workers.Outcome(job_id, None, f"{type(error).__name__}: {error}", time.time() - started)
        self._done.append(outcome)

    def wait(self, timeout: float) -> list[workers.Outcome]:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        self._done = []


@contextmanager
def recording(cfg: Config, reads: Reads) -> Iterator[None]:
    """While open, `config.load` returns `cfg` recorded into `reads`, pools run inline, and calls
    into `tabpilot.registry.tracking` other than `configure` are noted (they show the stage uses MLflow)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "load", lambda *_a, **_k: Recorder(cfg, "", reads))
        for name in ("ProcessPool", "DaskPool"):
            patch.setattr(workers, name, lambda n, loader, args, *_rest: InlinePool(n, loader, args, reads))
        for name, fn in vars(tracking).items():
            if callable(fn) and getattr(fn, "__module__", None) == tracking.__name__ and not name.startswith("_") \
                    and name != "configure" and not isinstance(fn, type):
                patch.setattr(tracking, name, _noting(fn, name, reads))
        yield


def _noting(fn: Any, name: str, reads: Reads) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        reads.mlflow_calls.add(name)
        return fn(*args, **kwargs)
    return call
