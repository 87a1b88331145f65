"""Retraining and promotion, stage functions chained without Prefect on a temporary SQLite store."""
from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tabpilot.core.artifacts import RunPaths, read_json
from tabpilot.core.config import Config, parse
from tabpilot.data import prepare
from tabpilot.registry import model_versions, retraining, tracking
from tabpilot.training import ensemble_stage, search_stage
from tests.helpers import make_frame

pytestmark = pytest.mark.slow  # timed searches: left out of `make test-fast`


def _config(tmp_path: Path, data: Path, **extra: object) -> Config:
    return parse({
        "seed": 3, "data": {"path": str(data), "target": "y"},
        "search": {"time_budget": 60, "cv_folds": 3, "max_trials": 2, "families": ["linear"]},
        "register": {"name": "retrained", "margin": 0.0},
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}, **extra,
    })


def _train(cfg: Config, paths: RunPaths) -> dict:
    tracking.configure(cfg.tracking, paths.root)
    for stage in (prepare.ingest, prepare.validate, prepare.split, prepare.preprocess, prepare.features):
        stage(cfg, paths)
    search_stage.search(cfg, paths)
    ensemble_stage.ensemble(cfg, paths)
    return model_versions.register(cfg, paths)


def _retrain(cfg: Config, paths: RunPaths) -> dict:
    """What flows/retraining.py runs, stage by stage."""
    tracking.configure(cfg.tracking, paths.root)
    records = {"champion": retraining.fetch_champion(cfg, paths)}
    cfg = retraining.retrain_config(cfg, paths)
    records["ingest"] = prepare.ingest(cfg, paths)
    records["validate"] = prepare.validate(cfg, paths)
    records["drift"] = retraining.check_drift(cfg, paths)
    if records["drift"]["retrain"]:
        for stage in (prepare.split, prepare.preprocess, prepare.features):
            stage(cfg, paths)
        search_stage.search(cfg, paths)
        ensemble_stage.ensemble(cfg, paths)
        records["register"] = model_versions.register(cfg, paths)
    return retraining.summarise(cfg, paths, records)


def test_retraining_on_unchanged_data_reproduces_the_champion_and_does_not_promote(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    make_frame(300, "binary", seed=1).to_csv(data, index=False)
    cfg = _config(tmp_path, data)
    first = _train(cfg, RunPaths(tmp_path / "first"))
    summary = _retrain(cfg, RunPaths(tmp_path / "again"))
    assert summary["data_unchanged"] is True and summary["drift"]["drifted_features"] == []
    candidate = summary["candidate"]
    # the same data, split and seed, warm-started from the champion's own configuration
    assert abs(candidate["test_score"] - first["test_score"]) < 1e-9
    assert candidate["champion_score_on_same_split"] == first["test_score"]
    assert summary["promoted"] is False and candidate["alias"] == "challenger"
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("retrained", "champion").version) == first["version"]
    trials = read_json(RunPaths(tmp_path / "again").trials)
    members = read_json(RunPaths(tmp_path / "first").member_configs)
    assert {"family": trials[0]["family"], "params": trials[0]["params"]} == \
        {"family": members[0]["family"], "params": members[0]["params"]}  # the warm start went first
    run = client.get_run(summary["run_id"])
    assert run.data.tags["tabpilot.kind"] == "retrain" and "drift.max_feature_psi" in run.data.metrics


def test_drifted_data_is_reported_and_an_error_stops_the_retrain(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    make_frame(300, "binary", seed=1).to_csv(data, index=False)
    cfg = _config(tmp_path, data, drift={"retrain_on_drift_only": True})
    _train(cfg, RunPaths(tmp_path / "first"))
    same = _retrain(cfg, RunPaths(tmp_path / "same"))  # nothing drifted: stops after the report
    assert same["retrained"] is False and same["candidate"] is None
    moved = make_frame(300, "binary", seed=2)
    moved["x2"] = moved["x2"] + 8.0  # beyond the range: a warning; and a drifted distribution
    (tmp_path / "new").mkdir()
    moved.iloc[:150].to_csv(tmp_path / "new" / "a.csv", index=False)
    moved.iloc[150:].to_csv(tmp_path / "new" / "b.csv", index=False)
    glob_cfg = cfg.with_overrides({"data.path": str(tmp_path / "new" / "*.csv")})
    summary = _retrain(glob_cfg, RunPaths(tmp_path / "moved"))
    assert "x2" in summary["drift"]["drifted_features"] and summary["retrained"] is True
    assert read_json(RunPaths(tmp_path / "moved").schema)["rows"] == 300  # both files

    broken = make_frame(300, "binary", seed=2).drop(columns="colour")
    broken.to_csv(tmp_path / "broken.csv", index=False)
    try:
        _retrain(cfg.with_overrides({"data.path": str(tmp_path / "broken.csv")}), RunPaths(tmp_path / "broken"))
    except Exception as error:
        assert "missing ['colour']" in str(error)
    else:
        raise AssertionError("a retrain on data without a contract column went through")
    assert len(MlflowClient().search_model_versions("name = 'retrained'")) == 2


def _register_when_released(root: str, barrier: object) -> None:
    cfg = _config(Path(root).parent, Path(root) / "unused.csv")
    tracking.configure(cfg.tracking, Path(root))
    barrier.wait()  # type: ignore[attr-defined]
    model_versions.register(cfg, RunPaths(Path(root)))


def test_two_runs_promoting_at_once_leave_one_champion_and_it_is_the_better(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    make_frame(300, "binary", seed=1).to_csv(data, index=False)
    roots = []
    for families in (["linear"], ["hist_gb"]):  # one seed, so one held-out split: scores compare
        cfg = _config(tmp_path, data).with_overrides({"search.families": families})
        paths = RunPaths(tmp_path / f"run_{families[0]}")
        tracking.configure(cfg.tracking, paths.root)
        for stage in (prepare.ingest, prepare.validate, prepare.split, prepare.preprocess, prepare.features):
            stage(cfg, paths)
        search_stage.search(cfg, paths)
        ensemble_stage.ensemble(cfg, paths)
        roots.append(paths.root)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    racers = [context.Process(target=_register_when_released, args=(str(r), barrier)) for r in roots]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(120)
        assert racer.exitcode == 0
    client = MlflowClient()
    versions = client.search_model_versions("name = 'retrained'")
    assert len(versions) == 2
    aliases = {k: str(v) for k, v in client.get_registered_model("retrained").aliases.items()}
    scores = {str(v.version): float(v.tags["test_score"]) for v in versions}
    champion = aliases["champion"]
    other = next(v for v in scores if v != champion)
    assert scores[champion] >= scores[other]
    # the loser either found the winner as champion (challenger) or was champion first (previous)
    assert aliases.get("challenger") == other or aliases.get("previous") == other
    assert np.isfinite(list(scores.values())).all()
