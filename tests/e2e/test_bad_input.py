"""Each user mistake: one line naming the problem and the fix, exit code 2, no traceback, nothing registered."""
from pathlib import Path

import pytest

from tests.helpers import make_frame, run_cli

pytestmark = pytest.mark.e2e

TWO_CLASSES = "x,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(30))
CASES = {
    "missing file": (None, ["--target", "y"], "not found"),
    "unknown target": ("x,y\n1,a\n2,b\n", ["--target", "nope"], "target column 'nope' not found"),
    "one class": ("x,y\n1,a\n2,a\n3,a\n", ["--target", "y"], "only one class"),
    "target all missing": ("x,y\n1,\n2,\n", ["--target", "y"], "has no values"),
    "empty table": ("x,y\n", ["--target", "y"], "no rows"),
    "empty file": ("", ["--target", "y"], "is empty"),
    "text regression target": ("x,y\n1,a\n2,b\n3,c\n", ["--target", "y", "--task", "regression"], "not numeric"),
    "unreadable file": (b"x,y\n1,caf\xe9\n", ["--target", "y"], "not UTF-8"),
    "zero budget": ("x,y\n1,a\n2,b\n", ["--target", "y", "--time-budget", "0"], "search.time_budget"),
    "budget too small for one model": ("x,y\n1,a\n2,b\n", ["--target", "y", "--time-budget", "5"],
                                       "smallest budget that works is 10 s"),
    "negative budget": ("x,y\n1,a\n2,b\n", ["--target", "y", "--time-budget", "-5"], "search.time_budget"),
    "metric for another task": (TWO_CLASSES, ["--target", "y", "--metric", "rmse"], "does not apply to a binary"),
    "too few rows": ("x,y\n1,a\n2,b\n3,a\n", ["--target", "y"], "at least 20"),
    "unknown strategy": (TWO_CLASSES, ["--target", "y", "--strategy", "hill"], "search.strategy"),
    "unknown objective": (TWO_CLASSES, ["--target", "y", "--objective", "fastest"], "search.objective"),
    "nothing to resume": (TWO_CLASSES, ["--target", "y", "--resume"], "no search to resume in runs/data"),
}


def _check_one_line_error(result, message: str, root: Path) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (root / "runs").exists()  # nothing was trained, so nothing can be registered


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line(tmp_path: Path, case: str) -> None:
    content, args, message = CASES[case]
    data = tmp_path / "data.csv"
    if isinstance(content, bytes):
        data.write_bytes(content)
    elif content is not None:
        data.write_text(content)
    result = run_cli(["train", "--data", str(data), *args], cwd=tmp_path, timeout=60)
    _check_one_line_error(result, message, tmp_path)


def test_a_bad_params_file_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("search:\n  time_budget: soon\n")
    result = run_cli(["train", "--params", "params.yaml"], cwd=tmp_path, timeout=60)
    _check_one_line_error(result, "search.time_budget", tmp_path)


def test_data_breaking_the_contract_stops_the_flow_before_training(tmp_path: Path) -> None:
    """A failure inside the Prefect flow is reported the same way, the search that ran beside the
    validation is stopped and discarded, and the registry stays empty."""
    good = "\n".join(["age,fare,survived"] + [f"{20 + i % 40},{10 + i % 7},{'yes' if i % 3 else 'no'}"
                                               for i in range(60)])
    (tmp_path / "good.csv").write_text(good)
    contract_run = run_cli(["stage", "ingest", "--params", "p.yaml", "--workdir", "c"], cwd=tmp_path)
    assert contract_run.returncode == 2  # p.yaml does not exist yet: named in one line
    (tmp_path / "p.yaml").write_text("data:\n  path: good.csv\n  target: survived\nregister:\n  name: broken\n")
    for stage in ("ingest", "validate"):
        assert run_cli(["stage", stage, "--params", "p.yaml", "--workdir", "c"], cwd=tmp_path).returncode == 0
    bad = good.replace("\n20,", "\nunknown,")  # text in a numeric column: an error by default
    (tmp_path / "bad.csv").write_text(bad)
    (tmp_path / "p.yaml").write_text("data:\n  path: bad.csv\n  target: survived\nvalidate:\n"
                                     "  contract: c/artifacts/contract.json\nregister:\n  name: broken\n")
    result = run_cli(["train", "--params", "p.yaml"], cwd=tmp_path)
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "[error: types] expect_column_values_to_be_in_type_list(age)" in error_lines[0]
    assert "e.g. ['unknown']" in error_lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs" / "broken" / "reports" / "registration.json").exists()
    assert not (tmp_path / "runs" / "broken" / "artifacts" / "search").exists()


def test_a_prefect_server_that_does_not_start_is_one_line(tmp_path: Path) -> None:
    """Prefect's local server not answering in time (a busy machine) is named, with the fixes, not a traceback."""
    make_frame(60).to_csv(tmp_path / "data.csv", index=False)
    home = tmp_path / "prefect"  # no server there yet, and no time to start one
    result = run_cli(["train", "--data", "data.csv", "--target", "y"], cwd=tmp_path, timeout=120,
                     env={"PREFECT_HOME": str(home), "TABPILOT_PREFECT_START_TIMEOUT": "0"})
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "did not answer within 0 s" in lines[0], result.stderr
    assert "PREFECT_API_URL" in lines[0] and "Traceback" not in result.stderr + result.stdout
    assert not (home / "tabpilot-server.json").exists()  # the half-started server was stopped


USAGE_MISTAKES = {
    "misspelt command": (["trian"], "Did you mean 'train'"),
    "option without its value": (["train", "--data"], "'--data' requires an argument"),
    "number that is not one": (["train", "--time-budget", "abc"], "Invalid value for '--time-budget'"),
    "required option missing": (["predict", "--input", "x.csv", "--output", "y.csv"], "Missing option '--model'"),
    "unknown option": (["train", "--bogus"], "No such option: --bogus"),
}


@pytest.mark.parametrize("case", list(USAGE_MISTAKES))
def test_a_usage_mistake_gets_the_usage_line_and_exit_2(tmp_path: Path, case: str) -> None:
    args, message = USAGE_MISTAKES[case]
    result = run_cli(args, tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    error = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and message in error[0], result.stderr
    assert len(result.stderr.strip().splitlines()) <= 4  # usage, the help hint and the error
