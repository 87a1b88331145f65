"""The shipped portfolio: known-good configurations per meta-learning dataset, and the lookup that
turns a new table's meta-features into warm-start configurations for the search.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabpilot.search.metafeatures import distance

DEFAULT_PATH = Path(__file__).parents[1] / "meta" / "portfolio.json"


def load_document(path: Path = DEFAULT_PATH) -> dict[str, Any]:
    """The portfolio file: {"entries": [...], "zero_shot": {kind: {"configs": [...]}}, ...}."""
    return json.loads(path.read_text()) if path.is_file() else {}


def load(path: Path = DEFAULT_PATH) -> list[dict[str, Any]]:
    """Portfolio entries: {"dataset", "task", "meta": {...}, "configs": [{"family", "params"}, ...]}."""
    return load_document(path).get("entries", [])


def kind(task: str) -> str:
    return "regression" if task == "regression" else "classification"


def zero_shot(task: str, path: Path = DEFAULT_PATH) -> list[dict[str, Any]]:
    """The configurations chosen across all meta-learning tables of this kind of task (metalearn/zeroshot.py)."""
    return load_document(path).get("zero_shot", {}).get(kind(task), {}).get("configs", [])


def warm_start(meta: dict[str, float], task: str, families: tuple[str, ...], n_datasets: int = 3,
               per_dataset: int = 2, entries: list[dict[str, Any]] | None = None,
               first: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The `first` configurations (the zero-shot portfolio), then those that did best on the
    `n_datasets` most similar tables of the same kind of task, best first; without repeats,
    restricted to the enabled families."""
    entries = load() if entries is None else entries
    similar = sorted((e for e in entries if kind(e["task"]) == kind(task)),
                     key=lambda e: (distance(meta, e["meta"]), e["dataset"]))[:n_datasets]
    chosen: list[dict[str, Any]] = [c for c in (zero_shot(task) if first is None else first) if c["family"] in families]
    for rank in range(per_dataset):
        for entry in similar:
            configs = [c for c in entry["configs"] if c["family"] in families]
            if rank < len(configs) and configs[rank] not in chosen:
                chosen.append(configs[rank])
    return chosen
