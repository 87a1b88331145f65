"""The retraining stages around the training ones: fetch what the champion was trained with, report
drift of the new data against it, and summarise the retrain.

A retrain is a training run on new data with two things taken from the current champion: its data
contract (the new data must keep it) and its ensemble members' configurations (tried first, as a
warm start). `retrain_config` applies both; the flow then runs the usual stages.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.core.artifacts import RunPaths, read_json, write_json
from tabpilot.core.config import Config
from tabpilot.core.errors import UserError
from tabpilot.core.progress import report
from tabpilot.data import drift
from tabpilot.registry import tracking

# What `register` logs under model_contract/ and a retrain needs back.
CHAMPION_FILES = ("contract.json", "profile.json", "member_configs.json")


def fetch_champion(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    """Copy the champion's contract, training profile and member configurations into the run."""
    name = cfg.register_.name
    champion = tracking.alias_version(name, "champion")
    if champion is None:
        raise UserError(f"model '{name}' has no champion to retrain: train one first with `tabpilot train`")
    paths.champion_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for file in CHAMPION_FILES:
            try:
                fetched = tracking.download_run_artifact(champion.run_id, f"model_contract/{file}", Path(tmp))
            except Exception:
                raise UserError(f"champion {name} v{champion.version} has no {file} (trained by an older "
                                "tabpilot): train a new champion with `tabpilot train`") from None
            (paths.champion_dir / file).write_bytes(fetched.read_bytes())
    record = {"name": name, "version": str(champion.version), "run_id": champion.run_id,
              "test_score": float(champion.tags.get("test_score", "nan")),
              "data_fingerprint": champion.tags.get("data_fingerprint")}
    write_json(paths.champion_dir / "champion.json", record)
    report("champion", f"retraining against {name} v{champion.version}")
    return record


def retrain_config(cfg: Config, paths: RunPaths) -> Config:
    """The run's config with the champion's contract and warm start."""
    return cfg.with_overrides({"validate.contract": str(paths.champion_dir / "contract.json"),
                               "search.warm_start": str(paths.champion_dir / "member_configs.json")})


def check_drift(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    """PSI of the new data against the champion's training profile, written to reports/drift.json."""
    frame = pd.read_parquet(paths.raw)
    reference = read_json(paths.champion_dir / "profile.json")
    result = drift.compare(reference, frame, cfg.data.target, cfg.drift.warn, cfg.drift.alert)
    write_json(paths.drift_report, result)
    target = result["target"]
    report("drift", f"{len(result['drifted_features'])} drifted features (max PSI {result['max_feature_psi']:.3f})"
           + (f", target PSI {target['psi']:.3f}" if target else ""))
    return {"drifted_features": result["drifted_features"], "max_feature_psi": result["max_feature_psi"],
            "target_psi": target["psi"] if target else None,
            "retrain": bool(result["drifted_features"]) or not cfg.drift.retrain_on_drift_only}


def summarise(cfg: Config, paths: RunPaths, records: dict[str, Any]) -> dict[str, Any]:
    """One JSON file and one MLflow run that say what the retrain found and did."""
    champion, found = records["champion"], records["drift"]
    registered = records.get("register")
    summary = {
        "model": cfg.register_.name, "data": cfg.data.path, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "champion_before": {"version": champion["version"], "test_score": champion["test_score"]},
        "data_unchanged": records.get("ingest", {}).get("fingerprint") == champion["data_fingerprint"],
        "drift": found, "retrained": registered is not None,
        "candidate": None if registered is None else {
            "version": registered["version"], "test_score": registered["test_score"],
            "champion_score_on_same_split": registered["champion_score"], "alias": registered["alias"],
            "gate": registered["gate"]},
        "promoted": registered is not None and registered["alias"] == "champion",
    }
    write_json(paths.retrain_summary, summary)
    run_id = tracking.start_run(cfg.register_.name, f"retrain-{time.strftime('%Y%m%d-%H%M%S')}",
                                {"tabpilot.kind": "retrain", "promoted": str(summary["promoted"]).lower()})
    metrics = {"drift.max_feature_psi": found["max_feature_psi"], "drift.drifted_features":
               len(found["drifted_features"]), "champion_before.test_score": champion["test_score"]}
    if found["target_psi"] is not None:
        metrics["drift.target_psi"] = found["target_psi"]
    if registered is not None:
        metrics["candidate.test_score"] = registered["test_score"]
        if registered["champion_score"] is not None:
            metrics["champion.test_score_same_split"] = registered["champion_score"]
    tracking.log(run_id, metrics=metrics, params={"data": cfg.data.path, "champion_before": champion["version"],
                                                  "candidate_version": (registered or {}).get("version", "none")})
    for path in (paths.retrain_summary, paths.drift_report):
        tracking.log_artifact(run_id, path, "reports")
    tracking.end_run(run_id)
    summary["run_id"] = run_id
    return summary
