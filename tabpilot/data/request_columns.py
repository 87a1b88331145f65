"""A scoring request as one numpy array per column, read straight from its JSON.

Through pandas, a request costs 0.1-0.4 ms per column before the model sees it (building the
frame, `io.normalise`, the contract check, the compiled model's column reads): 20-80 ms for one
row of an 80-column table (benchmarks/results/serving_suite_60s/). These arrays hold what
`io.normalise` would make of the same rows (float64 for numbers; str, NaN for a gap, otherwise),
so the contract check and the compiled ensemble give the same answers from them. A request this
path is not sure of (another shape, a value of an unexpected type, columns other than the model's,
a datetime or boolean column) returns None, and the pandas path decides and words the answer.
"""
from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

# The arrays beat the pandas path at 1, 100 and 1,000 rows on all ten suite tables (1,000 rows of
# ames: 69 -> 45 ms in process, results/serving_paths.md); a larger request goes through pandas.
MAX_ROWS = 100_000
_NONE = type(None)
_NUMBER, _TEXT = {int, float, _NONE}, {str, _NONE}


class Columns:
    """Rows as {column: array}, with the little of DataFrame's interface that scoring reads."""

    def __init__(self, arrays: dict[str, np.ndarray], rows: int) -> None:
        self.arrays, self.rows = arrays, rows

    @property
    def columns(self) -> Any:
        return self.arrays.keys()

    @property
    def index(self) -> pd.RangeIndex:
        return pd.RangeIndex(self.rows)

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, column: str) -> np.ndarray:
        return self.arrays[column]

    def select(self, columns: list[str]) -> Columns:
        return Columns({c: self.arrays[c] for c in columns}, self.rows)

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The same rows as `io.normalise` gives them, for what reads pandas (an uncompiled model)."""
        return pd.DataFrame({c: pd.Series(a, dtype="float64" if a.dtype.kind == "f" else "str")
                             for c, a in self.arrays.items()})


def from_payload(payload: Any, contract: dict[str, Any]) -> Columns | None:
    """The request's rows as Columns, or None when the pandas path must read them."""
    features = {c: k for c, k in contract.get("columns", {}).items() if c != contract.get("target")}
    if not features or any(kind not in ("numeric", "string") for kind in features.values()):
        return None
    values = _values(payload)
    if values is None or values[0].keys() != features.keys() or not 0 < values[1] <= MAX_ROWS:
        return None
    arrays = {}
    for column, cells in values[0].items():
        array = _numbers(cells) if features[column] == "numeric" else _texts(cells)
        if array is None:
            return None
        arrays[column] = array
    return Columns(arrays, values[1])


def _values(payload: Any) -> tuple[dict[str, list[Any]], int] | None:
    """{column: cells} and the row count of MLflow's JSON formats, when the shape is plain."""
    if not isinstance(payload, dict) or len(payload) != 1:
        return None
    key, value = next(iter(payload.items()))
    if key == "dataframe_split" and isinstance(value, dict) and set(value) <= {"columns", "data", "index"}:
        names, data = value.get("columns"), value.get("data")
        if not isinstance(names, list) or not isinstance(data, list) or not data \
                or len(set(map(str, names))) != len(names) \
                or not all(isinstance(row, list) and len(row) == len(names) for row in data):
            return None
        return {str(n): list(cells) for n, cells in zip(names, zip(*data, strict=True), strict=True)}, len(data)
    if key in ("dataframe_records", "inputs", "instances") and isinstance(value, list) and value \
            and all(isinstance(r, dict) for r in value):
        names = value[0].keys()
        if not all(r.keys() == names for r in value):
            return None
        return {str(n): [r[n] for r in value] for n in names}, len(value)
    if key in ("inputs", "instances") and isinstance(value, dict) and value:
        cells = {str(n): v if isinstance(v, list) else [v] for n, v in value.items()}
        lengths = {len(v) for v in cells.values()}
        return (cells, lengths.pop()) if len(lengths) == 1 else None
    return None


def _numbers(cells: list[Any]) -> np.ndarray | None:
    # bool is an int to Python but not to pandas' inference: left to the pandas path. NumPy reads None as NaN.
    return np.array(cells, dtype=float) if set(map(type, cells)) <= _NUMBER else None


def _texts(cells: list[Any]) -> np.ndarray | None:
    kinds = set(map(type, cells))
    if not kinds <= _TEXT:
        return None
    array = np.array(cells, dtype=object)
    if _NONE in kinds:
        array[np.equal(array, None)] = np.nan
    return array
