"""`dvc repro` in a fresh copy of the project: runs every stage, then nothing, then only what a param touches."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import BIN, REPO, cli_env

pytestmark = pytest.mark.e2e


def _dvc(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(BIN / "dvc"), *args], check=False, cwd=cwd, env=cli_env(cwd),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def _set_params(path: Path, ensemble: dict[str, object] | None = None, **search: object) -> None:
    params = yaml.safe_load(path.read_text())
    params["search"].update(search)
    params["ensemble"].update(ensemble or {})
    params["register"]["name"] = "titanic_dvc"
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def _fresh_copy(root: Path) -> Path:
    """The project's pipeline files in a new git repository, as a clone would have them."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / ".dvc", root / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def test_repro_runs_once_skips_when_unchanged_and_reruns_from_search(tmp_path: Path) -> None:
    _fresh_copy(tmp_path)
    _set_params(tmp_path / "params.yaml", time_budget=20, families=["linear", "hist_gb"], cv_folds=3)

    first = _dvc(["repro"], tmp_path)
    assert "Running stage 'register'" in first.stdout
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert metrics["metric"] == "roc_auc" and 0.7 < metrics["test_score"] <= 1
    shown = _dvc(["metrics", "show", "--json"], tmp_path).stdout
    assert "test_score" in shown

    second = _dvc(["repro"], tmp_path)
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout

    # The search keeps fold models only with ensemble.bagging: changing it makes the search stale too.
    _set_params(tmp_path / "params.yaml", ensemble={"bagging": False})
    stale = json.loads(_dvc(["status", "--json"], tmp_path).stdout)
    assert set(stale) == {"search", "ensemble"}, stale

    _set_params(tmp_path / "params.yaml", time_budget=21)
    third = _dvc(["repro"], tmp_path)
    ran = {line.split("'")[1] for line in third.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"search", "ensemble", "register"}
    registration = json.loads((tmp_path / "reports" / "registration.json").read_text())
    assert registration["name"] == "titanic_dvc" and registration["version"] == "2"


def test_a_trial_count_reproduces_the_test_score_exactly_and_dvc_exp_runs(tmp_path: Path) -> None:
    """With search.max_trials, two fresh copies give the same model; `dvc exp run -S` works after a
    first commit with a git identity (what the README asks for)."""
    scores = []
    for name in ("a", "b"):
        copy = _fresh_copy(tmp_path / name)
        _set_params(copy / "params.yaml", time_budget=300, max_trials=6, cv_folds=3,
                    families=["linear", "hist_gb", "random_forest"])
        _dvc(["repro"], copy)
        metrics = json.loads((copy / "reports" / "metrics.json").read_text())
        scores.append((metrics["test_score"], metrics["ensemble_cv_score"],
                       [(m["trial"], m["weight"]) for m in metrics["members"]]))
    assert scores[0] == scores[1]

    copy = tmp_path / "b"
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@example.com"}
    env = {**cli_env(copy), **identity}
    for git in (["add", "-A"], ["commit", "-qm", "first run"]):
        subprocess.run(["git", *git], cwd=copy, env=env, check=True, capture_output=True)
    experiment = subprocess.run([str(BIN / "dvc"), "exp", "run", "-S", "search.max_trials=3"], cwd=copy, env=env,
                                capture_output=True, text=True, timeout=600, check=False)
    assert experiment.returncode == 0, experiment.stdout[-2000:] + experiment.stderr[-2000:]
    shown = subprocess.run([str(BIN / "dvc"), "exp", "show", "--json"], cwd=copy, env=env, capture_output=True,
                           text=True, timeout=120, check=True).stdout
    assert '"max_trials": 3' in shown.replace("'", '"')
