"""Module paths of tabpilot 0.2, one flat package, for the models it pickled.

A pickle names each class by its module: a model registered by 0.2 asks for
`tabpilot.tracking.TabpilotPyfunc`, `tabpilot.fast_preprocess.FastPreprocessor` and the like. This
finder, right after the standard path finder, answers those old names with the modules' new homes, so such a model
still loads and serves; new pickles name the new paths. `tabpilot.ensemble`, a package now, hands
out its two old classes itself (tabpilot/ensemble/__init__.py).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

MOVED = {
    "config": "core.config", "errors": "core.errors", "artifacts": "core.artifacts", "metrics": "core.metrics",
    "progress": "core.progress", "plots": "core.plots", "native_categorical": "families.native_categorical",
    "io": "data.files", "validation": "data.validation", "drift": "data.drift", "preprocessing": "data.preprocessing",
    "features": "data.features", "fast_preprocess": "data.fast_preprocess", "request_columns": "data.request_columns",
    "request_check": "data.request_check", "pipeline": "data.prepare", "search_space": "search.spaces",
    "models": "search.estimators", "hpo": "search.hpo", "evaluate": "search.evaluate", "workers": "search.workers",
    "predict_cost": "search.predict_cost", "portfolio": "search.portfolio", "metafeatures": "search.metafeatures",
    "compiled": "ensemble.compiled", "fast_models": "ensemble.fast_models", "tracking": "registry.tracking",
    "pipeline_run": "registry.pipeline_runs", "retraining": "registry.retraining", "scoring": "registry.scoring",
    "serving": "registry.serving", "checks": "registry.contracts", "zeroshot": "metalearn.zeroshot",
}


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        old = fullname.removeprefix("tabpilot.")
        return importlib.util.spec_from_loader(fullname, self) if old in MOVED and old != fullname else None

    def create_module(self, spec: Any) -> ModuleType:
        return importlib.import_module(f"tabpilot.{MOVED[spec.name.removeprefix('tabpilot.')]}")

    def exec_module(self, module: ModuleType) -> None:
        """The new module is already imported."""


def install() -> None:
    """Before any later finder, such as an editable install's, which may map an old name to another
    checkout's stale file."""
    if not any(isinstance(finder, _OldPaths) for finder in sys.meta_path):
        after = next((i + 1 for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder),
                     len(sys.meta_path))
        sys.meta_path.insert(after, _OldPaths())
