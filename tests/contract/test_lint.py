"""The code stays ruff-clean (rules in pyproject.toml): checked with the suite, not left to memory."""
import subprocess
import sys

from tests.helpers import REPO


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "tabpilot", "tasks", "flows", "tests",
                             "benchmarks"], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
