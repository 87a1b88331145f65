"""The architecture's rules, checked: one-way layers, one module per outside system, dvc.yaml in step."""
import ast
import importlib
from pathlib import Path

import pytest
import yaml

from tabpilot.cli import STAGES
from tabpilot.core.artifacts import RunPaths
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
    ("mlflow", "registry/tracking.py"), ("hyperopt", "search/hpo.py"), ("great_expectations", "data/validation.py"),
])
def test_one_module_per_outside_system(system: str, owner: str) -> None:
    users = {_name(p) for p in LIBRARY if system in _imports(p)}
    assert users == {owner}


# The subpackages, lowest first: each imports only its own and lower ones. The modules at the top
# (api, cli, runner and the command line's helpers) may import any of them; none imports those.
LAYERS = ("families", "core", "data", "search", "ensemble", "registry", "training", "metalearn")


def _tabpilot_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tabpilot.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tabpilot"):
            found |= {f"{node.module}.{a.name}" for a in node.names} if node.module == "tabpilot" else {node.module}
    return found


def test_every_module_is_in_a_layer_or_at_the_top() -> None:
    packages = {p.parent.name for p in LIBRARY if p.parent != REPO / "tabpilot"}
    assert packages == set(LAYERS), "a new subpackage needs its place in LAYERS"


@pytest.mark.parametrize("path", [p for p in LIBRARY if p.parent != REPO / "tabpilot"], ids=_name)
def test_subpackages_import_only_their_layer_and_below(path: Path) -> None:
    own = LAYERS.index(path.relative_to(REPO / "tabpilot").parts[0])
    for name in _tabpilot_imports(path):
        parts = name.split(".")
        if parts[1] in ("__version__",):
            continue
        assert parts[1] in LAYERS, f"{_name(path)} imports {name}, a module at the top"
        assert LAYERS.index(parts[1]) <= own, f"{_name(path)} imports {name}, a higher layer"


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
    assert TASKS["register"].fn.__module__ == "tasks.promotion"
    from tabpilot.cli import STAGE_MODULES

    for name in order:  # `tabpilot stage NAME` (dvc repro) runs the runner's function
        module = importlib.import_module(STAGE_MODULES.get(name, "tabpilot.data.prepare"))
        assert getattr(module, name) is RUNNER_STAGES[name], name  # the registry's gate under Prefect's lock
