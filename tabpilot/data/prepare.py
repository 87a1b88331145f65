"""The data stages (ingest, validate, split, preprocess, features) as plain functions.

Each reads its inputs from files at `RunPaths` and writes its outputs there, so any stage reruns
alone (CLI, `dvc repro`) or in the Prefect flow, and returns a small JSON-able record of what it
did. The model stages are in `tabpilot.training` and `tabpilot.registry.model_versions`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sklearn.model_selection import train_test_split

from tabpilot.core.artifacts import RunPaths, read_json, write_json
from tabpilot.core.config import Config
from tabpilot.core.errors import UserError
from tabpilot.core.progress import report
from tabpilot.data import files
from tabpilot.data.features import plan_features
from tabpilot.data.files import Schema
from tabpilot.data.preprocessing import PreprocessPlan, plan_preprocessing, summary


def ingest(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    """Read the table, check the target, normalise dtypes, fingerprint; write raw Parquet and schema."""
    frame, schema = files.prepare_target(files.read_table(cfg.data.path), cfg.data.target, cfg.data.task)
    paths.raw.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(paths.raw, index=False)
    schema.save(paths.schema)
    report("ingest", f"{schema.rows} rows, {len(schema.features)} features, task {schema.task}")
    return {"rows": schema.rows, "features": len(schema.features), "task": schema.task,
            "fingerprint": schema.fingerprint, "dropped_target_rows": schema.dropped_target_rows}


def validate(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    """Build the data contract (or load the configured one) and validate the data against it."""
    from tabpilot.data import drift, validation

    frame = files.read_parquet(paths.raw)
    schema = Schema.load(paths.schema)
    if cfg.validate_.contract:
        contract_path = Path(cfg.validate_.contract)
        if not contract_path.is_file():
            raise UserError(f"contract {contract_path} not found: fix validate.contract in params.yaml")
        contract = checked = read_json(contract_path)
        by_construction = 0
    else:
        contract = validation.build_contract(frame, schema.target, cfg.validate_)
        checked, by_construction = validation.checks_that_can_fail(contract)
    write_json(paths.contract, contract)
    write_json(paths.profile, drift.profile(frame, cfg.drift.bins))
    result = validation.validate(frame, checked, docs_dir=paths.data_docs)
    write_json(paths.validation_report, {**result.to_dict(), "held_by_construction": by_construction})
    warned = len(result.warnings)
    held = f" ({by_construction} more hold by construction)" if by_construction else ""
    report("validate", f"{result.evaluated} expectations checked{held}, {len(result.failures) - warned} errors, "
           f"{warned} warnings" + (f": {result.summary()}" if result.failures else ""))
    if not result.success and cfg.validate_.fail_on_error:
        raise UserError(f"data contract broken: {result.summary()} (report: {paths.validation_report})")
    return {"success": result.success, "evaluated": result.evaluated, "held_by_construction": by_construction,
            "failures": len(result.failures), "warnings": warned}


def split(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    """Seeded held-out split, stratified for classification."""
    frame = files.read_parquet(paths.raw)
    schema = Schema.load(paths.schema)
    stratify = frame[schema.target] if schema.task != "regression" else None
    if stratify is not None and stratify.value_counts().min() < 2:
        rare = stratify.value_counts().idxmin()
        raise UserError(f"class '{rare}' of '{schema.target}' has a single row: a held-out split needs two; "
                        "add rows or drop that class")
    train, test = train_test_split(frame, test_size=cfg.split.test_rows(len(frame)), random_state=cfg.seed,
                                   stratify=stratify)
    paths.train.parent.mkdir(parents=True, exist_ok=True)
    train.reset_index(drop=True).to_parquet(paths.train, index=False)
    test.reset_index(drop=True).to_parquet(paths.test, index=False)
    return {"train_rows": len(train), "test_rows": len(test)}


def preprocess(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    """Infer column roles on the training split and plan imputation and encoding."""
    schema = Schema.load(paths.schema)
    train = files.read_parquet(paths.train)
    plan = plan_preprocessing(train.drop(columns=schema.target), cfg.preprocess)
    if not plan.of_role("numeric", "categorical", "datetime", "text"):
        raise UserError("no usable feature column (all are ids or constants): add informative columns")
    plan.save(paths.preprocess_plan)
    return summary(plan)


def features(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    """Plan constructed features (dates to parts, text to statistics)."""
    fplan = plan_features(PreprocessPlan.load(paths.preprocess_plan), cfg.features)
    fplan.save(paths.features_plan)
    return {"datetime": len(fplan.datetime), "text": len(fplan.text)}

