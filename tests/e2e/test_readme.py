"""The README's Python example runs as written, in a fresh folder, as a user would paste it."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, cli_env

pytestmark = pytest.mark.e2e


def test_the_readme_python_example_runs(tmp_path: Path) -> None:
    section = (REPO / "README.md").read_text().split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "no Python example under '## From Python'"
    done = subprocess.run([sys.executable, "-c", code.group(1)], cwd=tmp_path, env=cli_env(tmp_path),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "models:/titanic_py/1" in done.stdout and "family" in done.stdout
    assert (tmp_path / "runs" / "titanic_py" / "reports" / "registration.json").is_file()
