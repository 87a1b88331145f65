"""The shipped portfolio: known-good configurations per meta-learning dataset, and the lookup that
turns a new table's meta-features into warm-start configurations for the search.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabpilot.metafeatures import distance

DEFAULT_PATH = Path(__file__).with_name("meta") / "portfolio.json"


def load(path: Path = DEFAULT_PATH) -> list[dict[str, Any]]:
    """Portfolio entries: {"dataset", "task", "meta": {...}, "configs": [{"family", "params"}, ...]}."""
    if not path.is_file():
        return []
    return json.loads(path.read_text())["entries"]


def _kind(task: str) -> str:
    return "regression" if task == "regression" else "classification"


def warm_start(meta: dict[str, float], task: str, families: tuple[str, ...], n_datasets: int = 3,
               per_dataset: int = 2, entries: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Configurations that did best on the `n_datasets` most similar tables of the same kind of task,
    best first, without repeats, restricted to the enabled families."""
    entries = load() if entries is None else entries
    similar = sorted((e for e in entries if _kind(e["task"]) == _kind(task)),
                     key=lambda e: (distance(meta, e["meta"]), e["dataset"]))[:n_datasets]
    chosen: list[dict[str, Any]] = []
    for rank in range(per_dataset):
        for entry in similar:
            configs = [c for c in entry["configs"] if c["family"] in families]
            if rank < len(configs) and configs[rank] not in chosen:
                chosen.append(configs[rank])
    return chosen
