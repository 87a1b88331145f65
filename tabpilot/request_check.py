"""The data contract's error-severity expectations checked on one scoring request, in microseconds.

`tabpilot predict` checks a file with Great Expectations (tabpilot.validation), which costs a
second or more a batch; a server answering in milliseconds cannot. This evaluates the expectation
types the contract is built from with Great Expectations' semantics (nulls skipped by value
checks, `mostly`, strict bounds); a request that meets any other error-severity expectation (a
user's own) is checked by Great Expectations itself. tests/unit/test_request_check.py holds both to
the same verdicts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.request_columns import Columns
from tabpilot.validation import Failure, ValidationReport, _explain_types, _without_target, judgeable, validate

_SETS: dict[int, tuple[list[Any], frozenset[Any]]] = {}


def _allowed(levels: list[Any]) -> frozenset[Any]:
    """The contract's level list as a set, made once per list (a request is checked in
    microseconds, and a set of a few hundred levels takes tens of them to build)."""
    hit = _SETS.get(id(levels))
    if hit is None or hit[0] is not levels:
        if len(_SETS) > 10_000:
            _SETS.clear()
        hit = _SETS[id(levels)] = (levels, frozenset(levels))
    return hit[1]


def _share_unexpected(unexpected: np.ndarray, present: np.ndarray) -> float:
    counted = int(present.sum())
    return float(unexpected[present].sum()) / counted if counted else 0.0


@dataclass(frozen=True)
class _View:
    """What the checks read of one column: its values and what its pandas dtype would say."""

    values: np.ndarray
    dtype: str  # the pandas dtype's name
    numeric: bool
    text: bool  # pandas' str/string dtype or object
    present: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        values = self.values
        object.__setattr__(self, "present", ~np.isnan(values) if values.dtype.kind == "f" else ~pd.isna(values))


def _series_view(series: pd.Series) -> _View:
    return _View(series.to_numpy(), series.dtype.name, pd.api.types.is_numeric_dtype(series),
                 isinstance(series.dtype, pd.StringDtype) or series.dtype == object)


def _array_view(values: np.ndarray) -> _View:
    """A Columns array (float64 numbers or text objects) as normalise's frame would hold it."""
    numeric = values.dtype.kind == "f"
    return _View(values, "float64" if numeric else "str", numeric, not numeric)


def _column_result(kind: str, kwargs: dict[str, Any], name: str, view: _View) -> tuple[bool, Any, list[Any]]:
    """(holds, observed, unexpected examples) of one column expectation."""
    values, present = view.values, view.present
    mostly = float(kwargs.get("mostly", 1.0))
    if kind == "expect_column_values_to_not_be_null":
        share = 1.0 - float(present.mean()) if len(values) else 0.0
        return share <= 1.0 - mostly + 1e-12, round(100 * share, 3), []
    if kind == "expect_column_values_to_be_between":
        if not view.numeric:
            return False, f"column '{name}' holds text where numbers are expected", []
        x = values if values.dtype == np.float64 else values.astype(float)
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        bad = np.zeros(len(x), dtype=bool)
        with np.errstate(invalid="ignore"):
            if low is not None:
                bad |= (x <= low) if kwargs.get("strict_min") else (x < low)
            if high is not None:
                bad |= (x >= high) if kwargs.get("strict_max") else (x > high)
        if not bad.any():  # the common case, without the bookkeeping of a failure
            return True, 0.0, []
        share = _share_unexpected(bad, present)
        return share <= 1.0 - mostly + 1e-12, round(100 * share, 3), x[bad & present][:5].tolist()
    if kind == "expect_column_values_to_be_in_set":
        allowed = _allowed(kwargs["value_set"])
        bad = np.array([v not in allowed for v in values], dtype=bool)
        if not bad.any():
            return True, 0.0, []
        share = _share_unexpected(bad, present)
        return share <= 1.0 - mostly + 1e-12, round(100 * share, 3), [v for v in values[bad & present][:5]]
    if kind == "expect_column_values_to_be_unique":
        seen = pd.Series(values[present])
        dup = seen.duplicated(keep=False).to_numpy()
        return not dup.any(), round(100 * float(dup.mean()) if len(dup) else 0.0, 3), seen[dup].head(5).tolist()
    if kind == "expect_column_values_to_be_in_type_list":
        if view.dtype != "object":
            return view.dtype in kwargs["type_list"], view.dtype, []
        names = {type(v).__name__ for v in values[present]}
        return names <= set(kwargs["type_list"]), sorted(names), []
    if kind == "expect_column_values_to_be_of_type":
        expected = kwargs["type_"]
        if expected == "datetime64":
            return view.dtype.startswith("datetime64"), view.dtype, []
        if expected == "str":
            return view.text and all(map(isinstance, values[present], repeat(str))), view.dtype, []
    raise KeyError(kind)


def check_request(frame: pd.DataFrame | Columns, contract: dict[str, Any]) -> ValidationReport:
    """The contract's error-severity expectations on `frame` (prediction input: the target is not
    required): the same verdict `validation.validate` gives, with the failures that decide it.
    Columns (a small request's arrays) are checked as the frame `io.normalise` makes of them."""
    arrays = isinstance(frame, Columns)
    views: dict[str, _View] = {}
    expectations = [e for e in judgeable(_without_target(contract["suite"]["expectations"], contract["target"]),
                                         len(frame)) if (e.get("meta") or {}).get("severity", "error") == "error"]
    failures: list[Failure] = []
    for expectation in expectations:
        kind, kwargs, meta = expectation["type"], expectation.get("kwargs", {}), expectation.get("meta") or {}
        column = kwargs.get("column")
        try:
            if kind == "expect_table_row_count_to_be_between":
                n = len(frame)
                holds = (kwargs.get("min_value") is None or n >= kwargs["min_value"]) and (
                    kwargs.get("max_value") is None or n <= kwargs["max_value"])
                observed, examples = n, []
            elif kind == "expect_table_columns_to_match_set":
                expected, seen = set(kwargs["column_set"]), set(map(str, frame.columns))
                holds = seen == expected if kwargs.get("exact_match", True) else expected <= seen
                observed, examples = {"missing": sorted(expected - seen), "unexpected": sorted(seen - expected)}, []
            elif column is not None and column not in frame.columns:
                holds, observed, examples = False, "column missing", []
            else:
                if column not in views:
                    views[column] = _array_view(frame[column]) if arrays else _series_view(frame[column])
                holds, observed, examples = _column_result(kind, kwargs, column, views[column])
        except KeyError:  # an expectation type this module does not evaluate: Great Expectations does
            return validate(frame.frame if arrays else frame, contract, require_target=False)
        if not holds:
            failures.append(Failure(kind, column, observed, examples, "error", str(meta.get("check", "user"))))
    if failures and arrays:
        frame = frame.frame
    failures = _explain_types(failures, frame, contract.get("columns", {}))
    return ValidationReport(success=not failures, evaluated=len(expectations), failures=failures)
