"""The stage functions chained without Prefect, on a small table, with MLflow on a temporary SQLite store."""
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tabpilot.core import plots
from tabpilot.core.artifacts import RunPaths, load_pickle, read_json
from tabpilot.core.config import Config, parse
from tabpilot.core.metrics import resolve
from tabpilot.data import prepare
from tabpilot.data.features import consensus, decisions
from tabpilot.data.files import Schema
from tabpilot.data.preprocessing import PreprocessPlan
from tabpilot.registry import model_versions, tracking
from tabpilot.search import metafeatures, portfolio
from tabpilot.search.estimators import refit_candidate
from tabpilot.search.evaluate import (
    HOLDOUT_SHARE,
    auto_folds,
    cross_validate,
    encode_target,
    load_workload,
    make_folds,
    refit,
    search_folds,
)
from tabpilot.search.fold_bag import FoldBag
from tabpilot.search.spaces import DEFAULTS, clip_to_space, defaults_in_order
from tabpilot.training import budget, ensemble_stage, search_stage
from tests.helpers import make_frame

pytestmark = pytest.mark.slow  # timed searches: left out of `make test-fast`


def _config(tmp_path: Path, ensemble: dict[str, object] | None = None, **search: object) -> Config:
    csv = tmp_path / "table.csv"
    if not csv.exists():
        make_frame(240, "binary", seed=1).to_csv(csv, index=False)
    return parse({
        "seed": 3,
        "data": {"path": str(csv), "target": "y"},
        "search": {"time_budget": 30, "cv_folds": 3, "families": ["linear", "hist_gb", "xgboost"], **search},
        "register": {"name": "unit_model"},
        "ensemble": ensemble or {},
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    })


def _prepare(cfg: Config, paths: RunPaths) -> None:
    tracking.configure(cfg.tracking, paths.root)
    for stage in (prepare.ingest, prepare.validate, prepare.split, prepare.preprocess, prepare.features):
        stage(cfg, paths)


def test_stages_chain_from_file_to_registered_champion(tmp_path: Path) -> None:
    cfg = _config(tmp_path, max_trials=6)
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    found = search_stage.search(cfg, paths)
    assert found["trials"] == 6
    result = ensemble_stage.ensemble(cfg, paths)
    assert 0.5 < result["test_score"] <= 1.0
    reg = model_versions.register(cfg, paths)
    assert (reg["version"], reg["alias"]) == ("1", "champion")

    client = MlflowClient()
    parent = client.get_run(reg["run_id"])
    assert parent.info.status == "FINISHED" and parent.data.metrics["test_score"] == result["test_score"]
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{reg['run_id']}'")
    assert len(children) == 6
    assert all("family" in c.data.params and "fit_time" in c.data.metrics for c in children)
    model = mlflow.pyfunc.load_model("models:/unit_model@champion")
    test = make_frame(10, "binary", seed=9).drop(columns="y")
    test.loc[0, "colour"] = "never-seen"
    out = model.predict(test)
    assert list(out.columns) == ["prediction", "proba_no", "proba_yes"] and out["prediction"].notna().all()


@pytest.mark.parametrize(("refit_full", "repeats"), [(False, 1), (False, 2), (True, 2)])
def test_kept_fold_models_become_bagged_members(tmp_path: Path, refit_full: bool, repeats: int) -> None:
    unlimited = {"max_predict_ms": None, "max_batch_ms": None}
    cfg = _config(tmp_path, ensemble={"refit_full": refit_full, "top_k": 3, **unlimited}, max_trials=8,
                  cv_repeats=repeats)
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    search_stage.search(cfg, paths)
    ok = sorted((t for t in read_json(paths.trials) if t["status"] == "ok"), key=lambda t: (t["loss"], t["trial"]))
    kept = {int(p.stem.split("_")[1]) for p in paths.fold_models.glob("trial_*.pkl")}
    # only the ensemble's candidates keep their models: the best (as many as it may look at) and
    # each family's best
    family_bests = {next(t for t in ok if t["family"] == f)["trial"] for f in {t["family"] for t in ok}}
    assert kept == {t["trial"] for t in ok[: max(3, budget.STACK_MEMBERS)]} | family_bests
    assert len(ok) > len(kept)
    result = ensemble_stage.ensemble(cfg, paths)
    # offered to the selection: the top_k best and each family's best, best first
    offered = read_json(paths.metrics)["candidates"]
    assert set(offered) == {t["trial"] for t in ok[:3]} | family_bests
    assert offered == [t["trial"] for t in ok if t["trial"] in set(offered)]
    members = [m["trial"] for m in read_json(paths.metrics)["members"]]
    assert result["bagged_members"] == sorted(members)
    assert result["refit_on_all_rows"] == (sorted(members) if refit_full else [])
    model = load_pickle(paths.ensemble)
    # a bag holds every fold of every repeat, tested or refit on all rows
    bag_size = cfg.search.cv_folds * repeats
    assert all(isinstance(m, FoldBag) and len(m.models) == bag_size for m in model.members)
    if not refit_full:  # the tested bags are the search's own fold models
        first = load_pickle(paths.fold_models_of(members[0]))
        test = pd.read_parquet(paths.test).drop(columns="y")
        np.testing.assert_allclose(model.members[0].predict_proba(test),
                                   np.mean([m.predict_proba(test) for m in first], axis=0))


@pytest.mark.parametrize("refit_full", [False, True])
def test_a_latency_limit_trims_members_and_fold_models_to_fit(tmp_path: Path, refit_full: bool) -> None:
    limit = 1.5  # ms for 1,000 rows: one cheap model and a few of its fold models, not the whole ensemble
    cfg = _config(tmp_path, ensemble={"top_k": 4, "max_predict_ms": None, "max_batch_ms": limit,
                                      "refit_full": refit_full}, max_trials=8)
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    search_stage.search(cfg, paths)
    records = {t["trial"]: t for t in read_json(paths.trials)}
    result = ensemble_stage.ensemble(cfg, paths)
    metrics = read_json(paths.metrics)
    cost = metrics["predict_cost"]
    assert cost["limit"] == {"one_row_ms": None, "rows_1000_ms": limit, "mb": None}
    assert cost["estimated"]["rows_1000_ms"] <= limit
    model = load_pickle(paths.ensemble)
    used = metrics["fold_models_used"]
    assert sum(used.values()) < cfg.search.cv_folds * len(used) or len(used) == 1
    assert len(used) == len(model.members)
    for trial in used:  # each member serves some of the fold models its trial kept (or one refit)
        assert records[int(trial)]["predict_cost"] is not None
        assert 1 <= used[trial] <= len(records[int(trial)]["fold_scores"])
    # The test score is the served model's own, whatever it kept.
    if not refit_full:
        test = pd.read_parquet(paths.test)
        y = encode_target(test.pop("y"), Schema.load(paths.schema))
        assert result["test_score"] == pytest.approx(resolve("auto", "binary").score(y, model.predict_proba(test)))


def test_the_pareto_objective_keeps_the_front_and_search_and_ensemble_keep_the_size_limit(tmp_path: Path) -> None:
    """Forests of this table pickle to more than 0.1 MB, the linear models to less: with that limit
    the search tells every forest as a failure, the ensemble serves no forest, and the front of
    score, latency and size is written, plotted and logged (issue 21)."""
    limit = 0.1
    cfg = _config(tmp_path, ensemble={"max_predict_ms": None, "max_batch_ms": None, "max_model_mb": limit},
                  max_trials=8, objective="pareto", families=["linear", "random_forest"])
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    found = search_stage.search(cfg, paths)
    trials = [t for t in read_json(paths.trials) if t["status"] == "ok"]
    assert all(t["latency_ms"] > 0 and t["model_mb"] > 0 for t in trials)
    assert {t["over_limit"] for t in trials} == {True, False}
    assert all(t["over_limit"] == (t["model_mb"] > limit) for t in trials)
    assert all(t["family"] == "random_forest" for t in trials if t["over_limit"])
    front = read_json(paths.pareto)
    assert front == found["pareto_front"] and front
    points = {t["trial"]: (t["loss"], t["latency_ms"], t["model_mb"]) for t in trials}
    for p in front:  # nothing dominates a point of the front, and every point off it is dominated
        assert not any(all(a <= b for a, b in zip(q, points[p["trial"]], strict=True)) and q != points[p["trial"]]
                       for q in points.values())
    off = set(points) - {p["trial"] for p in front}
    assert all(any(all(a <= b for a, b in zip(points[f["trial"]], points[t], strict=True)) for f in front) for t in off)
    assert (paths.plots / "pareto.png").stat().st_size > 0
    ensemble_stage.ensemble(cfg, paths)
    metrics = read_json(paths.metrics)
    assert metrics["predict_cost"]["estimated"]["mb"] <= limit
    assert {m["family"] for m in metrics["members"]} == {"linear"}
    run = MlflowClient().get_run(read_json(paths.run_info)["run_id"])
    assert run.data.metrics["search.pareto_front_size"] == len(front)
    children = MlflowClient().search_runs([run.info.experiment_id], "tags.pareto_front = 'true'")
    assert sorted(int(c.data.metrics["trial"]) for c in children) == sorted(p["trial"] for p in front)


def test_without_bagging_members_are_refit_and_no_models_are_kept(tmp_path: Path) -> None:
    cfg = _config(tmp_path, ensemble={"bagging": False}, max_trials=4)
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    search_stage.search(cfg, paths)
    assert not paths.fold_models.exists()
    result = ensemble_stage.ensemble(cfg, paths)
    assert result["bagged_members"] == []
    assert not any(isinstance(m, FoldBag) for m in load_pickle(paths.ensemble).members)


def _searched_twice(cfg: Config, tmp_path: Path) -> tuple[list[list[tuple[Any, ...]]], RunPaths]:
    """(trial, family, params, score) of two searches of one configuration, each in its own run
    directory, and the second's paths."""
    runs = []
    for name in ("a", "b"):
        paths = RunPaths(tmp_path / name)
        _prepare(cfg, paths)
        search_stage.search(cfg, paths)
        runs.append([(r["trial"], r["family"], r["params"], r["score"]) for r in read_json(paths.trials)])
    return runs, paths


def test_max_trials_makes_the_search_reproducible(tmp_path: Path) -> None:
    cfg = _config(tmp_path, max_trials=8, n_workers=2)
    runs, _ = _searched_twice(cfg, tmp_path)
    assert runs[0] == runs[1]
    assert len(runs[0]) == 8


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "anneal", "grid", "gp", "evolution"])
def test_every_strategy_runs_in_the_search_and_max_trials_makes_it_reproducible(tmp_path: Path,
                                                                                strategy: str) -> None:
    # After the four family defaults, the strategy proposes: the same seed gives the same trials.
    cfg = _config(tmp_path, max_trials=8, n_workers=2, portfolio=False, strategy=strategy)
    runs, paths = _searched_twice(cfg, tmp_path)
    assert runs[0] == runs[1]
    rows = len(pd.read_parquet(paths.train))
    defaults = [(c["family"], c["params"]) for c in defaults_in_order(cfg.search.families, rows)]
    proposed = [(family, params) for _, family, params, _ in runs[0][len(defaults):]]
    assert len(proposed) == 4 and all(p not in defaults for p in proposed)
    assert sum(score is not None for *_, score in runs[0]) >= 6


def test_the_search_starts_from_the_portfolio_then_the_defaults(tmp_path: Path) -> None:
    cfg = _config(tmp_path, families=["linear", "hist_gb", "xgboost", "random_forest"])
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    train = pd.read_parquet(paths.train)
    y = encode_target(train.pop("y"), Schema.load(paths.schema))
    meta = metafeatures.compute(train, y, "binary", PreprocessPlan.load(paths.preprocess_plan))
    rows = len(train)
    warm = [{"family": c["family"], "params": clip_to_space(c["family"], c["params"], rows)}
            for c in portfolio.warm_start(meta, "binary", cfg.search.families)]
    assert warm, "the shipped portfolio has classification entries"
    # the cheapest family's default (which no deadline stops), the portfolio's picks, then each
    # family's default it did not bring, cheapest first, then TPE
    cheapest, *defaults = defaults_in_order(cfg.search.families, rows)
    warm = [c for c in warm if c != cheapest]
    defaults = [d for d in defaults if d not in warm]
    queued = [cheapest, *warm, *defaults]
    search_stage.search(cfg.with_overrides({"search.max_trials": len(queued) + 1}), paths)
    tried = [{"family": t["family"], "params": t["params"]} for t in read_json(paths.trials)]
    assert cheapest["family"] == "linear"
    assert tried[: len(queued)] == queued
    assert len(tried) == len(queued) + 1


def test_a_broken_contract_stops_before_training_and_a_warning_does_not(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    paths = RunPaths(tmp_path / "first")
    _prepare(cfg, paths)
    drifted = make_frame(100, "binary", seed=5)
    drifted["x1"] = drifted["x1"] * 1000  # out of range: a warning by default
    broken = drifted.assign(colour=None)  # an all-null column: an error
    for name, frame in (("drifted", drifted), ("broken", broken)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    runs = {}
    for name in ("drifted", "broken"):
        runs[name] = (cfg.with_overrides({"data.path": str(tmp_path / f"{name}.csv"),
                                          "validate.contract": str(paths.contract)}), RunPaths(tmp_path / name))
        prepare.ingest(*runs[name])
    warned = prepare.validate(*runs["drifted"])
    assert warned["success"] is True and warned["warnings"] >= 1
    report = read_json(runs["drifted"][1].validation_report)
    assert any(f["check"] == "ranges" and f["column"] == "x1" for f in report["failures"])
    with pytest.raises(Exception, match=r"\[error: nulls\] expect_column_values_to_not_be_null\(colour\)"):
        prepare.validate(*runs["broken"])
    assert read_json(runs["broken"][1].validation_report)["success"] is False


def test_a_better_model_takes_champion_and_rollback_restores_the_old_one(tmp_path: Path) -> None:
    # An XOR of a number's sign and a colour: no linear model can learn it, boosted trees can.
    rng = np.random.default_rng(0)
    x1, colour = rng.normal(size=400), rng.choice(["red", "blue"], size=400)
    xor = (x1 > 0) ^ (colour == "red")
    frame = pd.DataFrame({"x1": x1, "colour": colour, "y": np.where(xor, "yes", "no")})
    frame.to_csv(tmp_path / "table.csv", index=False)
    weak = _config(tmp_path, max_trials=1, families=["linear"]).with_overrides({"register.name": "gate_model"})
    # The portfolio's first picks are XGBoost with column sampling below 1.0: each tree must still get
    # both columns, since a tree of one cannot split an XOR.
    strong = weak.with_overrides({"search.max_trials": 4, "search.families": ["hist_gb", "xgboost"]})
    decisions = []
    for name, cfg in (("weak", weak), ("strong", strong)):
        paths = RunPaths(tmp_path / name)
        _prepare(cfg, paths)
        search_stage.search(cfg, paths)
        ensemble_stage.ensemble(cfg, paths)
        decisions.append(model_versions.register(cfg, paths))
    assert decisions[0]["alias"] == "champion" and decisions[0]["test_score"] < 0.7
    assert decisions[1]["alias"] == "champion" and decisions[1]["previous_champion"] == "1"
    assert decisions[1]["champion_score"] == pytest.approx(decisions[0]["test_score"])  # same held-out split
    assert str(tracking.alias_version("gate_model", "previous").version) == "1"
    assert model_versions.rollback("gate_model") == ("2", "1")
    assert str(tracking.alias_version("gate_model", "champion").version) == "1"
    assert str(tracking.alias_version("gate_model", "rolled_back").version) == "2"


@pytest.mark.parametrize("refit_full", [False, True])
def test_a_holdout_search_scores_its_holdout_rows_and_keeps_its_models(tmp_path: Path, refit_full: bool) -> None:
    cfg = _config(tmp_path, ensemble={"top_k": 3, "refit_full": refit_full}, max_trials=4, cv_folds=1)
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    search_stage.search(cfg, paths)
    kept = list(paths.fold_models.glob("trial_*.pkl"))
    train = pd.read_parquet(paths.train)
    y = encode_target(train.pop("y"), Schema.load(paths.schema))
    folds = make_folds(y, "binary", 1, cfg.seed)
    valid = np.sort(folds[0][1])
    with np.load(paths.oof) as stored:
        oof = {int(k.split("_")[1]): stored[k] for k in stored.files}
    metric = resolve("auto", "binary")
    for trial in read_json(paths.trials):
        if trial["status"] == "ok":  # its predictions and score are the holdout rows', not diluted by others
            assert oof[trial["trial"]].shape == (len(valid), 2) and len(valid) < len(y)
            assert trial["score"] == pytest.approx(metric.score(y[valid], oof[trial["trial"]]))
    assert kept and all(len(load_pickle(path)) == 1 for path in kept)  # the holdout model itself
    result = ensemble_stage.ensemble(cfg, paths)
    assert result["bagged_members"] and 0.5 < result["test_score"] <= 1.0
    members = load_pickle(paths.ensemble).members
    if refit_full:  # on all rows a holdout member is refit as one model, not split again
        assert result["refit_on_all_rows"] and not any(isinstance(m, FoldBag) for m in members)
    else:
        assert all(isinstance(m, FoldBag) and len(m.models) == 1 for m in members)


def test_folds_follow_the_data_size_and_the_budget() -> None:
    assert [auto_folds(2_000, 60), auto_folds(20_000, 60), auto_folds(40_000, 60), auto_folds(40_000)] == [5, 3, 1, 3]
    y = np.array([0] * 900 + [1] * 100)
    (train, valid), = make_folds(y, "binary", 1, seed=0)
    assert len(valid) == 200 and y[valid].sum() == 20 and not set(train) & set(valid)  # stratified 80/20


def test_repeats_follow_rows_per_second_of_budget_and_only_with_automatic_folds(tmp_path: Path) -> None:
    cfg = _config(tmp_path, cv_folds=None, time_budget=300)
    # 3 below 3 rows per second of budget, 2 below 6, else 1; a holdout is never repeated
    assert [search_folds(cfg, rows) for rows in (600, 1_500, 2_000, 20_000, 200_000)] == \
        [(5, 3), (5, 2), (5, 1), (3, 1), (1, 1)]
    assert search_folds(cfg.with_overrides({"search.cv_folds": 4}), 1_000) == (4, 1)
    assert search_folds(cfg.with_overrides({"search.cv_repeats": 2}), 200_000) == (1, 1)
    assert search_folds(cfg.with_overrides({"search.cv_folds": 4, "search.cv_repeats": 2}), 50_000) == (4, 2)
    y = np.array([0] * 70 + [1] * 30)
    folds = make_folds(y, "binary", 5, seed=0, repeats=3)
    assert len(folds) == 15
    counts = np.bincount(np.concatenate([valid for _, valid in folds]), minlength=len(y))
    assert (counts == 3).all()  # every row scored once per repeat
    assert all(y[valid].sum() == 6 for _, valid in folds)  # stratified
    assert not np.array_equal(folds[0][1], folds[5][1])  # a repeat is a new shuffle


def test_repeated_folds_average_each_rows_predictions(tmp_path: Path) -> None:
    cfg = _config(tmp_path, cv_folds=3, cv_repeats=2)
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    work = load_workload(str(paths.root), cfg.to_dict())
    assert len(work.folds) == 6 and work.n_folds == 3
    candidate = {"family": "linear", "params": {"C": 1.0, "class_weight": None}}
    out = cross_validate(work, {"candidate": candidate, "deadline": time.time() + 60, "keep_models": None})
    expected = np.zeros((len(work.y), 2))
    for train_idx, valid_idx in work.folds:
        model = work.pipeline(candidate).fit(work.X.iloc[train_idx], work.y[train_idx])
        expected[valid_idx] += model.predict_proba(work.X.iloc[valid_idx]) / 2
    assert out["status"] == "ok" and len(out["fold_scores"]) == 6
    np.testing.assert_allclose(out["oof"], expected, rtol=1e-9)
    assert out["score"] == pytest.approx(work.metric.score(work.y, expected))


def test_a_late_repeat_runs_new_folds_and_folds_its_predictions_into_the_trials(tmp_path: Path) -> None:
    cfg = _config(tmp_path, cv_folds=3)
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    work = load_workload(str(paths.root), cfg.to_dict())
    candidate = {"family": "linear", "params": {"C": 1.0, "class_weight": None}}
    bag = tmp_path / "trial_0.pkl"
    first = cross_validate(work, {"candidate": candidate, "deadline": time.time() + 60, "keep_models": str(bag)})
    again = cross_validate(work, {"candidate": candidate, "deadline": time.time() + 60, "keep_models": str(bag),
                                  "repeat": 1, "merge": (first["oof"], 1)})
    new_folds = make_folds(work.y, "binary", 3, cfg.seed + 1)
    assert not np.array_equal(new_folds[0][1], work.folds[0][1])
    expected = np.zeros((len(work.y), 2))
    for train_idx, valid_idx in new_folds:
        model = work.pipeline(candidate).fit(work.X.iloc[train_idx], work.y[train_idx])
        expected[valid_idx] = model.predict_proba(work.X.iloc[valid_idx])
    np.testing.assert_allclose(again["oof"], (first["oof"] + expected) / 2, rtol=1e-9)
    assert again["score"] == pytest.approx(work.metric.score(work.y, again["oof"]))
    assert again["models_kept"] and len(load_pickle(bag)) == 6  # the bag gained the new folds' models
    lost = cross_validate(work, {"candidate": candidate, "deadline": time.time() + 60,
                                 "keep_models": str(tmp_path / "trial_9.pkl"), "repeat": 1,
                                 "merge": (first["oof"], 1)})
    assert not lost["models_kept"] and not (tmp_path / "trial_9.pkl").exists()  # no bag to add to


def test_a_refit_keeps_the_features_its_fold_models_chose(tmp_path: Path) -> None:
    frame = make_frame(240, "binary", seed=1)
    noise = np.random.default_rng(1).normal(size=(240, 8))
    frame.assign(**{f"n{i}": noise[:, i] for i in range(8)}).to_csv(tmp_path / "table.csv", index=False)
    cfg = _config(tmp_path, cv_folds=3)  # features ranked among noise: other rows, another choice
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    work = load_workload(str(paths.root), cfg.to_dict())
    candidate = {"family": "xgboost", "params": DEFAULTS["xgboost"],
                 "features": {"construct": True, "keep": 0.3, "select": "model"}}
    out = cross_validate(work, {"candidate": candidate, "deadline": time.time() + 60, "keep_models": None})
    folds = [decisions(work.pipeline(candidate).fit(work.X.iloc[t], work.y[t])) for t, _ in work.folds]
    assert out["decided"] == consensus(folds) and len(out["decided"]["interactions"]) == 4
    # On train + test rows the selector would choose again; given the decisions it keeps the folds' own.
    refit_job = {"candidate": refit_candidate({**candidate, "decided": out["decided"]}), "with_test": True}
    kept = decisions(refit(work, refit_job)["model"])
    assert {k: sorted(v) for k, v in kept.items()} == {k: sorted(v) for k, v in out["decided"].items()}
    assert "decided" not in cross_validate(work, {"candidate": {"family": "linear", "params": DEFAULTS["linear"]},
                                                  "deadline": time.time() + 60, "keep_models": None})


@pytest.mark.parametrize("refit_full", [False, True])
def test_late_in_a_long_search_the_best_trials_are_repeated_and_bag_more_models(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refit_full: bool) -> None:
    from tabpilot.search import loop

    # As a 300 s search does after 60% of its window, here after 2 s.
    monkeypatch.setattr(loop, "LATE_MIN_SECONDS", 2.0)
    monkeypatch.setattr(loop, "LATE_SHARE", 0.0)
    # no latency limit: how many repeats fit in 40 s varies by machine, and the limit cuts big bags
    cfg = _config(tmp_path, time_budget=40, families=["linear", "hist_gb"], prune=False,
                  ensemble={"top_k": 3, "refit_full": refit_full, "max_predict_ms": None, "max_batch_ms": None})
    paths = RunPaths(tmp_path / "run")
    _prepare(cfg, paths)
    found = search_stage.search(cfg, paths)
    trials = read_json(paths.trials)
    assert found["late_repeats"] > 0 and all(t["late"] <= loop.LATE_REPEATS for t in trials)
    repeated = [t for t in trials if t["repeats"] > 1]
    assert repeated and all(len(t["fold_scores"]) == 3 * t["repeats"] and t["repeats"] == 1 + t["late"]
                            for t in repeated)
    y = encode_target(pd.read_parquet(paths.train)["y"], Schema.load(paths.schema))
    work = load_workload(str(paths.root), cfg.to_dict())
    with np.load(paths.oof) as stored:  # the averaged predictions give the score the trial reports
        held = [t for t in repeated if f"trial_{t['trial']}" in stored.files]
        assert held
        for t in held:
            assert resolve("auto", "binary").score(y, stored[f"trial_{t['trial']}"]) == pytest.approx(t["score"])
            # ... and they are the new shuffles' alone: the search's own folds chose the trial
            candidate = {"family": t["family"], "params": t["params"],
                         **({"features": t["features"]} if t["features"] else {})}
            new = [cross_validate(work, {"candidate": candidate, "deadline": time.time() + 60, "repeat": r})["oof"]
                   for r in range(1, t["late"] + 1)]
            np.testing.assert_allclose(stored[f"trial_{t['trial']}"], np.mean(new, axis=0), rtol=1e-6)
    client = MlflowClient()  # the trial's child run shows the score after its last repeat
    child = client.search_runs([client.get_experiment_by_name("unit_model").experiment_id],
                               filter_string=f"tags.mlflow.runName = 'trial-{repeated[0]['trial']:03d}-"
                                             f"{repeated[0]['family']}'")[0]
    assert child.data.metrics["cv_score"] == pytest.approx(repeated[0]["score"])
    assert child.data.metrics["repeats"] == repeated[0]["repeats"]
    folds = sorted(int(k.split("_")[1]) for k in child.data.metrics if k.startswith("fold_"))
    assert folds == list(range(3 * repeated[0]["repeats"]))  # every repeat's folds, each once
    assert [child.data.metrics[f"fold_{i}_score"] for i in folds] == pytest.approx(repeated[0]["fold_scores"])
    for t in repeated:
        if paths.fold_models_of(t["trial"]).exists():
            assert len(load_pickle(paths.fold_models_of(t["trial"]))) == 3 * t["repeats"]
    result = ensemble_stage.ensemble(cfg, paths)
    sizes = {m["trial"]: len(b.models) for m, b in zip(read_json(paths.metrics)["members"],
                                                        load_pickle(paths.ensemble).members, strict=True)}
    by_trial = {t["trial"]: t for t in trials}
    # a bag holds all its repeats' models, as tested and as refit on all rows
    assert result["bagged_members"] and all(sizes[t] == 3 * by_trial[t]["repeats"] for t in sizes)
    assert result["refit_on_all_rows"] == (sorted(sizes) if refit_full else [])


def test_a_trial_whose_predictions_were_dropped_is_neither_offered_nor_repeated() -> None:
    from tabpilot.search.records import SearchResult, TrialRecord

    # Trial 0's predictions were dropped while it ranked low; a late repeat then lowered trial 1's
    # score below it. Only held trials count: trial 1 and 2 are the best two that can be used.
    records = [TrialRecord(t, "mlp", {}, "ok", -loss, loss, 1.0, 0.0, 1.0) for t, loss in
               [(0, 0.10), (1, 0.12), (2, 0.15), (3, 0.20)]]
    result = SearchResult(records, {t: np.zeros(3) for t in (1, 2, 3)})
    assert [r.trial for r in result.held()] == [1, 2, 3]
    assert [r.trial for r in result.candidates(2)] == [1, 2]


def test_each_familys_best_is_offered_beside_the_overall_best() -> None:
    from tabpilot.search.records import best_of_each_family

    # (trial, family, loss): mlp holds the three best; linear's best is trial 5, hist_gb's trial 2
    trials = [(1, "mlp", 0.10), (3, "mlp", 0.11), (4, "mlp", 0.12), (2, "hist_gb", 0.20), (5, "linear", 0.30),
              (6, "linear", 0.30), (7, "hist_gb", 0.25)]
    assert best_of_each_family(trials) == [1, 2, 5]  # a tie goes to the lower trial id


def test_refit_seconds_scale_each_member_to_the_rows_it_will_see() -> None:
    grow = 4 / 3  # test_size 0.25: all rows are 4/3 of the training split's
    exp = budget.ROWS_EXPONENT
    # 5 folds, 10 s in all: a kept bag refits its 5 models on 4/3 of the rows; an unkept member fits
    # one model on the training split (5/4 of a fold's rows), then one on all rows.
    kept, unkept = (10.0, 5, 5), (10.0, 5, 0)
    assert budget.refit_seconds([kept], 5, 0.25, refit_full=False) == 0.0
    assert budget.refit_seconds([kept], 5, 0.25, refit_full=True) == pytest.approx(10 * grow ** exp)
    assert budget.refit_seconds([unkept], 5, 0.25, refit_full=True) == pytest.approx(
        2 * 1.25 ** exp + 2 * (grow * 1.25) ** exp)
    # A holdout's kept model saw 80% of the training split; on all rows it is refit as one model.
    assert budget.refit_seconds([(2.0, 1, 1)], 1, 0.25, refit_full=True) == pytest.approx(
        2 * (grow / 0.8) ** exp)


def test_testing_seconds_scale_the_validation_predictions_to_the_test_rows() -> None:
    # 1,000 training rows, test_size 0.25: 333 test rows; a kept 5-fold bag's five models each predict them.
    bag = budget.testing_seconds([(2.0, 5)], 5, 1000, 0.25)
    assert bag == pytest.approx(2.0 * 5 * (1000 / 3) / 1000)
    assert budget.testing_seconds([(2.0, 1)], 5, 1000, 0.25) == pytest.approx(bag / 5)  # refit: one model
    assert budget.testing_seconds([(2.0, 1)], 1, 1000, 0.25) == pytest.approx(
        2.0 * (1000 / 3) / (HOLDOUT_SHARE * 1000))
    narrow, wide = pd.DataFrame(np.zeros((500, 9))), pd.DataFrame(np.zeros((500, plots.PERMUTATION_COLUMNS + 1)))
    assert plots.permuted_rows(narrow) == 10 * plots.PERMUTATION_ROWS and plots.permuted_rows(wide) == 0


def test_the_reserve_counts_the_likely_ensemble_and_stays_within_its_share(tmp_path: Path) -> None:
    from tabpilot.search.records import SearchResult, TrialRecord

    def result(n: int, fit_time: float) -> SearchResult:
        records = [TrialRecord(i, "hist_gb", {}, "ok", 0.5, 0.5 + i / 100, fit_time, 0.0, 1.0,
                               fold_scores=[0.5], models_kept=True) for i in range(n)]
        return SearchResult(records, {})

    cfg = _config(tmp_path, ensemble={"refit_full": True}, time_budget=60)
    reserve = budget.ensemble_reserve(cfg, n_folds=1)
    one = budget.refit_seconds([(1.0, 1, 1)], 1, cfg.split.test_size, True)
    # Each of the best RESERVE_MEMBERS trials adds its refit, shared by the workers, and the compiling
    # of its fold pipeline; more do not.
    assert reserve(result(8, 1.0)) - reserve(result(4, 1.0)) == pytest.approx(
        4 * one / cfg.search.n_workers + 4 * budget.COMPILE_SECONDS)
    assert reserve(result(12, 1.0)) == reserve(result(8, 1.0))
    assert reserve(result(8, 100.0)) == pytest.approx(
        budget.CHOOSE_SECONDS + budget.RESERVE_FIXED + 8 * budget.COMPILE_SECONDS
        + budget.RESERVE_MAX_SHARE * 60)
    # A member without kept models counts only among the best STACK_MEMBERS: lower down it is
    # offered to the ensemble only if its refit still fits.
    plain = budget.ensemble_reserve(cfg.with_overrides({"ensemble.refit_full": False}), n_folds=1)
    best = result(8, 1.0)
    unkept_low = SearchResult([*best.records[:7], replace(best.records[7], fit_time=20.0, models_kept=False)], {})
    unkept_high = SearchResult([replace(best.records[0], fit_time=20.0, models_kept=False), *best.records[1:]], {})
    assert plain(unkept_low) == pytest.approx(plain(best) - budget.COMPILE_SECONDS)  # not counted at all
    assert plain(unkept_high) > plain(best) + 20 / cfg.search.n_workers


def test_under_a_latency_limit_the_reserve_counts_what_the_ensemble_can_serve(tmp_path: Path) -> None:
    from tabpilot.search.records import SearchResult, TrialRecord

    # Eight 5-fold bags of 10 s; one fold model costs 1 ms a row, so a 2.5 ms limit serves two
    # members with one fold model each, and each of them is refit on the training split first.
    cost = {"model": [1.0, 10.0], "preprocess": [0.0, 0.0], "key": None}
    result = SearchResult([TrialRecord(i, "hist_gb", {}, "ok", 0.5, 0.5 + i / 100, 10.0, 0.0, 1.0,
                                       fold_scores=[0.5] * 5, models_kept=True, predict_cost=cost)
                           for i in range(8)], {})
    limited = _config(tmp_path, ensemble={"max_predict_ms": 2.5, "max_batch_ms": None}, time_budget=600)
    free = _config(tmp_path, ensemble={"max_predict_ms": None, "max_batch_ms": None}, time_budget=600)
    one = budget.refit_seconds([(10.0, 5, 1)], 5, limited.split.test_size, refit_full=False)
    assert one == pytest.approx(2 * 1.25 ** budget.ROWS_EXPONENT)  # a fold's 2 s, on 5/4 of its rows
    assert budget.ensemble_reserve(limited, n_folds=5)(result) == pytest.approx(
        budget.CHOOSE_SECONDS + budget.RESERVE_FIXED + 2 * one / limited.search.n_workers + budget.POOL_START
        + 2 * budget.COMPILE_SECONDS)
    # Without a limit every best trial's whole bag is served: nothing to refit, 40 pipelines to compile.
    assert budget.ensemble_reserve(free, n_folds=5)(result) == pytest.approx(
        budget.CHOOSE_SECONDS + budget.RESERVE_FIXED + 8 * 5 * budget.COMPILE_SECONDS)


def test_likely_members_admit_the_best_that_fit_then_give_back_fold_models() -> None:
    from tabpilot.ensemble.latency import Candidate, likely_members
    from tabpilot.search.predict_cost import Cost

    def candidate(trial: int, ms: float, folds: int = 5) -> Candidate:
        return Candidate(trial, Cost(ms, 10 * ms), Cost(0.0, 0.0), folds, f"trial {trial}")

    # Trial 1 does not fit beside trial 0 under 2.8 ms and is passed over; 0 and 2 fit, and 0 (the
    # better) gets a second fold model back while the whole stays within the limit.
    ranked = [candidate(0, 1.0), candidate(1, 2.5), candidate(2, 0.5)]
    assert likely_members(ranked, Cost(2.8, 1e9, np.inf), 8) == {0: 2, 2: 1}
    assert likely_members(ranked, Cost(2.8, 1e9, np.inf), 1) == {0: 2}
    # When none fits alone, the cheapest is the ensemble; a member that kept no fold models serves 0.
    assert likely_members([candidate(0, 5.0), candidate(1, 4.0, folds=0)], Cost(3.0, 1e9, np.inf), 8) == {1: 0}


def test_the_stacking_check_takes_fewer_rows_when_members_give_many_columns() -> None:
    binary = [np.full((6069, 2), 0.5)] * 5  # one column each
    five_classes = [np.full((6069, 5), 0.2)] * 5  # five columns each
    assert len(ensemble_stage._stacking_rows(6069, 0, binary)) == 6069
    rows = ensemble_stage._stacking_rows(6069, 0, five_classes)
    assert len(rows) == ensemble_stage.STACK_MAX_CELLS // 25 and len(set(rows)) == len(rows)
    assert len(ensemble_stage._stacking_rows(50_000, 0, binary)) == ensemble_stage.STACK_MAX_ROWS


def test_no_stacker_is_tried_whose_members_the_latency_limit_would_refuse(tmp_path: Path) -> None:
    from tabpilot.core.metrics import resolve
    from tabpilot.ensemble.latency import Candidate
    from tabpilot.search.predict_cost import Cost

    cfg = _config(tmp_path)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    oof = {t: np.column_stack([1 - (p := np.clip(y * 0.6 + rng.random(300) * 0.4, 0, 1)), p]) for t in range(5)}
    costs = {t: Candidate(t, Cost(0.5, 8.0), Cost(0.1, 1.0), 5, "k") for t in range(5)}  # 5 x 8 ms, shared steps
    args = (cfg, "binary", resolve("roc_auc", "binary"), list(range(5)), oof, y, {0: 1.0}, costs)
    checked = ensemble_stage._choose_combiner(*args, Cost(3.0, 60.0, np.inf))  # one model each: 41 ms, fits
    assert "stacking_score" in checked
    skipped = ensemble_stage._choose_combiner(*args, Cost(3.0, 30.0, np.inf))
    assert "stacking_score" not in skipped and skipped["method"] == "caruana"
    # No limit, or members of unknown cost: the check runs as before.
    assert "stacking_score" in ensemble_stage._choose_combiner(*args[:-1], {}, Cost(3.0, 30.0, np.inf))
    assert "stacking_score" in ensemble_stage._choose_combiner(*args, None)


def test_a_candidate_that_needs_a_refit_is_offered_only_while_the_refits_fit_in_time(tmp_path: Path) -> None:
    cfg = _config(tmp_path, ensemble={"refit_full": True}, time_budget=60)
    paths = RunPaths(tmp_path / "run")
    records = {t: {"fit_time": 10.0, "fold_scores": [0.5] * 3, "repeats": 1} for t in range(4)}
    for t in (0, 2):  # trials 1 and 3 kept no fold models
        paths.fold_models_of(t).parent.mkdir(parents=True, exist_ok=True)
        paths.fold_models_of(t).write_bytes(b"")
    now = time.time()
    assert ensemble_stage._deliverable(cfg, paths, records, [0, 1, 2, 3], now + 1000) == [0, 1, 2, 3]
    # Bags of kept trials are ready; a refit of 10 s of folds cannot finish within 12 s of the end.
    assert ensemble_stage._deliverable(cfg, paths, records, [0, 1, 2, 3], now + 12) == [0, 2]
    # Without kept fold models at all, every candidate stays: the best one's refit is required anyway.
    bare = RunPaths(tmp_path / "bare")
    assert ensemble_stage._deliverable(cfg, bare, records, [1, 3], now + 12) == [1, 3]


def test_a_member_whose_fold_model_can_stand_in_is_refit_only_if_that_ends_in_time(tmp_path: Path) -> None:
    cfg = _config(tmp_path, time_budget=300)
    rows = 950_000  # a holdout search: the rung member fitted 25k rows in 10 s, on all of them ~800 s
    records = {1: {"fit_time": 10.0, "fold_scores": [0.9], "rows": 25_000}, 2: {"fit_time": 10.0, "fold_scores": [0.9]}}
    weights, now = {1: 0.5, 2: 0.5}, time.time()
    assert ensemble_stage._to_refit(cfg, records, weights, [], [1], rows, now + 60) == {2: 0.5}  # 2 has no model
    assert ensemble_stage._to_refit(cfg, records, weights, [], [1], rows, now + 2000) == weights
    assert ensemble_stage._to_refit(cfg, records, weights, [2], [1], rows, now + 2000) == {1: 0.5}  # 2: its bag


def test_refits_that_grew_past_the_latency_limit_give_back_their_fold_models_first() -> None:
    from sklearn.linear_model import LinearRegression

    from tabpilot.search.predict_cost import Cost, model_cost

    rng = np.random.default_rng(0)

    def linear(columns: int) -> LinearRegression:  # costs grow with the coefficients
        return LinearRegression().fit(rng.random((20, columns)), rng.random(20))

    grown, small, same = linear(10_000), linear(10), linear(10)
    refits, folds = {1: grown, 2: same}, {1: small, 2: linear(10)}
    both = model_cost(grown).batch_ms + model_cost(same).batch_ms
    # Over the limit with both refits: the one that grew gives its fold model back, the other stays.
    assert ensemble_stage._refits_within(refits, folds, Cost(1.0, both - 1e-6, np.inf)) == {1: small, 2: same}
    assert ensemble_stage._refits_within(refits, folds, Cost(1.0, both, np.inf)) == refits
    # When no mix fits, every member serves its fold model, as the search chose them.
    assert ensemble_stage._refits_within(refits, folds, Cost(1.0, 1e-6, np.inf)) == folds
