"""Adapters that run one system on one dataset of the public suite; see ../README.md.

Each adapter is run as `python -m peers.<system>` inside its own virtualenv. This package file
holds the protocol's plain facts and is standard library only, so the runner can import it
without numpy or scikit-learn; `peers.common` holds the split and the metrics.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

SUITE_ENV = "TABPILOT_BENCH_SUITE"
"""Environment variable naming public_suite.py; the runner sets it for every adapter."""
DEFAULT_SUITE = Path(__file__).resolve().parents[3] / "shared" / "bench" / "public_suite.py"
METRIC_BY_TASK = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
HIGHER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}


def suite_path() -> Path:
    """public_suite.py: $TABPILOT_BENCH_SUITE if set, else shared/bench beside the repository."""
    return Path(os.environ.get(SUITE_ENV) or DEFAULT_SUITE)


def suite_tasks(path: Path | None = None) -> dict[str, str]:
    """{dataset: task} in the suite's order, read from the LOADERS literal without importing it."""
    tree = ast.parse((path or suite_path()).read_text())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(getattr(t, "id", None) == "LOADERS" for t in node.targets)):
            return {ast.literal_eval(k): ast.literal_eval(v.elts[0])  # type: ignore[arg-type,attr-defined]
                    for k, v in zip(node.value.keys, node.value.values, strict=True)}
    raise ValueError(f"no LOADERS mapping in {path or suite_path()}")


def emit(text: str, out: Path | None) -> None:
    """A report script's Markdown: printed, and written to `out` when given."""
    print(text)
    if out:
        out.write_text(text)
