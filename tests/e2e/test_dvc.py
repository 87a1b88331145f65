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


def _set_params(path: Path, **search: object) -> None:
    params = yaml.safe_load(path.read_text())
    params["search"].update(search)
    params["register"]["name"] = "titanic_dvc"
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_repro_runs_once_skips_when_unchanged_and_reruns_from_search(tmp_path: Path) -> None:
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / ".dvc", tmp_path / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    _set_params(tmp_path / "params.yaml", time_budget=14, families=["linear", "hist_gb"], cv_folds=3)

    first = _dvc(["repro"], tmp_path)
    assert "Running stage 'register'" in first.stdout
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert metrics["metric"] == "roc_auc" and 0.7 < metrics["test_score"] <= 1
    shown = _dvc(["metrics", "show", "--json"], tmp_path).stdout
    assert "test_score" in shown

    second = _dvc(["repro"], tmp_path)
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout

    _set_params(tmp_path / "params.yaml", time_budget=15)
    third = _dvc(["repro"], tmp_path)
    ran = {line.split("'")[1] for line in third.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"search", "ensemble", "register"}
    registration = json.loads((tmp_path / "reports" / "registration.json").read_text())
    assert registration["name"] == "titanic_dvc" and registration["version"] == "2"
