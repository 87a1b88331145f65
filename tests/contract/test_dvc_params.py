"""`dvc.yaml` declares, for every stage, exactly the configuration keys that stage reads.

The reads are found by running each stage as `tabpilot stage NAME` runs it (the CLI function, in
this process, with its workers inline) on a small table, with a config that logs every field read.
A key a stage reads but does not declare lets `dvc repro` reuse a stale stage (a search run without
bagging kept no fold models, so `-S ensemble.bagging=true` gave another model than a fresh run); a
key declared but never read reruns the stage for nothing.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tabpilot import cli
from tabpilot.core.artifacts import RunPaths, read_json
from tabpilot.core.config import Config, parse
from tabpilot.registry import tracking
from tests.contract.config_reads import Reads, recording
from tests.helpers import REPO, make_frame

# Whole-config dumps that are records of the run, not inputs to any output: the pipeline run's
# MLflow params (for comparing runs in the UI) and the registered version's params hash. (Versions
# are registered once per pipeline run, so a register rerun never rewrites that hash.)
PROVENANCE = {"_log_inputs", "_tags"}


def _leaves(tree: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        out += _leaves(value, f"{dotted}.") if isinstance(value, dict) and value else [dotted]
    return out


ALL_KEYS = _leaves(Config().to_dict())


def _expand(key: str) -> set[str]:
    """A key as the leaf keys it covers: a whole section (or "" for the whole config) is all of them."""
    return {k for k in ALL_KEYS if not key or k == key or k.startswith(f"{key}.")} or {key}


def _covers(declared: str, key: str) -> bool:
    return key == declared or key.startswith(f"{declared}.")


def _declared() -> dict[str, list[str]]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        keys: list[str] = []
        for entry in stage.get("params", []):
            if isinstance(entry, dict):  # {file: [keys]}: only params.yaml is the run configuration
                keys += [k for file, listed in entry.items() if file == "params.yaml" for k in listed or [""]]
            else:
                keys.append(entry)
        out[name] = keys
    return out


def _config(root: Path) -> Config:
    make_frame(400, "binary", seed=1).to_csv(root / "table.csv", index=False)
    # Options that take the most code paths: bagging and the refit on all rows both on, folds and
    # repeats chosen from the budget, two families so the stacker has candidates, and a one-hot limit
    # below the 3 colours so both categorical encoders are built (the linear family's pooled one-hot, not
    # its column per level, which reads no pooling settings).
    return parse({
        "seed": 3,
        "data": {"path": str(root / "table.csv"), "target": "y"},
        "search": {"time_budget": 45, "max_trials": 4, "families": ["linear", "hist_gb"], "n_workers": 1},
        "ensemble": {"bagging": True, "refit_full": True, "stacking": True, "top_k": 3},
        "register": {"name": "contract_model"},
        "validate": {"expectations": []},
        "preprocess": {"max_onehot_levels": 2, "every_level": False},
        "tracking": {"uri": f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"},
    })


@pytest.fixture(scope="module")
def stage_reads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Reads]:
    """Every stage run in order as the CLI runs it, each with its own record of reads."""
    root = tmp_path_factory.mktemp("stages")
    (root / "mlruns").mkdir()
    cfg = _config(root)
    environment, cwd = dict(os.environ), Path.cwd()
    out: dict[str, Reads] = {}
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tracking, "_USER_URI", None)  # a user's MLFLOW_TRACKING_URI must not be written to
            # The budget counts from now, not from this test process's start: after minutes of other
            # tests the search would otherwise get one trial, and the ensemble nothing to plan.
            patch.setattr(cli, "_command_start", time.time)
            os.chdir(root)
            for name in cli.STAGES:
                out[name] = Reads()
                with recording(cfg, out[name]):
                    cli.stage(name, params=Path("params.yaml"), workdir=Path("."))
                if name == "search":
                    _drop_second_bag(RunPaths(root))
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environment)
    return out


def _drop_second_bag(paths: RunPaths) -> None:
    """The second-best trial's fold models gone, as when they are too large to keep: the ensemble
    then also plans and runs a refit, next to the bagged members."""
    ok = sorted((t for t in read_json(paths.trials) if t["status"] == "ok"), key=lambda t: (t["loss"], t["trial"]))
    paths.fold_models_of(ok[1]["trial"]).unlink()


def _read_keys(reads: Reads, name: str) -> set[str]:
    keys = set().union(*(_expand(k) for k in reads.keys))
    dumps = [caller for caller, _ in reads.dumps if caller not in PROVENANCE]
    if dumps:  # a whole config dumped for another use is a read of every key
        keys |= set(ALL_KEYS)
    if not reads.mlflow_calls:
        # The CLI points MLflow at the tracking URI before every stage; a stage that never calls
        # MLflow cannot depend on where it points.
        keys = {k for k in keys if not _covers("tracking", k)}
    return keys


def test_dvc_stages_are_the_cli_stages() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert list(stages) == list(cli.STAGES)
    for name, stage in stages.items():
        assert stage["cmd"].startswith(f"tabpilot stage {name} "), stage["cmd"]


def test_every_key_a_stage_reads_is_declared(stage_reads: dict[str, Reads]) -> None:
    declared = _declared()
    missing = {}
    for name, reads in stage_reads.items():
        keys = sorted(k for k in _read_keys(reads, name) if not any(_covers(d, k) for d in declared[name]))
        if keys:
            missing[name] = keys
    assert not missing, "dvc.yaml stages read params they do not declare (dvc repro would reuse them stale): " + \
        "; ".join(f"{name}: {', '.join(keys)}" for name, keys in missing.items())


def test_every_declared_key_is_read(stage_reads: dict[str, Reads]) -> None:
    declared = _declared()
    unused = {}
    for name, reads in stage_reads.items():
        keys = _read_keys(reads, name)
        idle = [d for d in declared[name] if not any(_covers(d, k) for k in keys)]
        if idle:
            unused[name] = idle
    assert not unused, "dvc.yaml stages declare params they never read (a change reruns them for nothing): " + \
        "; ".join(f"{name}: {', '.join(keys)}" for name, keys in unused.items())


def test_the_reads_that_hide_in_workers_and_refits_are_seen(stage_reads: dict[str, Reads]) -> None:
    """Keys read only in workers (the pipelines' encoders), or only when a member needs a refit."""
    search = _read_keys(stage_reads["search"], "search")
    assert {"split.test_size", "ensemble.bagging", "ensemble.top_k", "ensemble.refit_full",
            "preprocess.max_onehot_levels", "preprocess.rare_level_share", "preprocess.every_level"} <= search
    assert "split.test_size" in _read_keys(stage_reads["ensemble"], "ensemble")  # the refit plan's
