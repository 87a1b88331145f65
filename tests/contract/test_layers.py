"""The architecture's rules, checked: one-way layers, one module per outside system, dvc.yaml in step."""
import ast
from pathlib import Path

import pytest
import yaml

from tabpilot.artifacts import RunPaths
from tabpilot.cli import STAGES
from tests.helpers import REPO


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


LIBRARY = sorted((REPO / "tabpilot").rglob("*.py"))  # subpackages included


def _name(path: Path) -> str:
    return str(path.relative_to(REPO / "tabpilot"))


@pytest.mark.parametrize("path", LIBRARY, ids=_name)
def test_library_never_imports_the_orchestrator_or_upper_layers(path: Path) -> None:
    imports = _imports(path)
    if _name(path) in ("cli.py", "warm.py"):  # the entry point and its warm server may start the flow, lazily
        imports -= {"flows"}
    assert not imports & {"prefect", "flows", "tasks"}, _name(path)


@pytest.mark.parametrize(("system", "owner"), [
    ("mlflow", "tracking.py"), ("hyperopt", "hpo.py"), ("great_expectations", "validation.py"),
])
def test_one_module_per_outside_system(system: str, owner: str) -> None:
    users = {_name(p) for p in LIBRARY if system in _imports(p)}
    assert users == {owner}


def test_tasks_are_thin_and_flows_only_wire_tasks() -> None:
    for path in (REPO / "tasks").glob("*.py"):
        tree = ast.parse(path.read_text())
        for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            assert len(fn.body) <= 3, f"{path.name}:{fn.name} holds logic; move it into tabpilot/"
    assert {"prefect", "tasks", "tabpilot"} >= _imports(REPO / "flows" / "training.py") - {
        "time", "pathlib", "typing", "threading", "__future__"}


def test_dvc_yaml_runs_every_stage_through_the_cli_with_known_paths() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert tuple(stages) == STAGES
    paths = RunPaths(Path("."))
    known = {str(getattr(paths, p).relative_to(".")) for p in dir(RunPaths) if isinstance(getattr(RunPaths, p),
                                                                                          property)}
    known |= {str(Path(k).parent) for k in known}
    for name, stage in stages.items():
        assert stage["cmd"].startswith(f"tabpilot stage {name} ")
        for entry in stage.get("deps", []) + stage.get("outs", []) + stage.get("metrics", []):
            path = entry if isinstance(entry, str) else next(iter(entry))
            assert path in known, f"{name}: {path} is not a RunPaths path"


def test_every_list_of_the_stages_is_the_runners() -> None:
    # The runner declares the stages (tabpilot.runner.STAGES); the CLI, the report and the flow keep
    # their own light lists (the CLI starts without importing the stages' libraries): all must agree.
    from flows.training import TASKS
    from tabpilot.report import STAGE_ORDER
    from tabpilot.runner import DATA, MODEL
    from tabpilot.runner import STAGES as RUNNER_STAGES

    order = tuple(RUNNER_STAGES)
    assert order == STAGES == STAGE_ORDER == tuple(TASKS) == DATA + MODEL
    assert all(TASKS[name].fn is RUNNER_STAGES[name] for name in order if name != "register")
    assert TASKS["register"].fn.__module__ == "tasks.promotion"  # the registry's gate under Prefect's lock
