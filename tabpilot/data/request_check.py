"""The data contract's expectations checked on rows to score, in microseconds a request.

Great Expectations (tabpilot.data.validation) costs a second or more a batch: a server answering in
milliseconds cannot pay it, nor `tabpilot predict` scoring 100,000 rows a second (5 of its 7.5 s
on the demo's 100,000 rows, benchmarks/results/predict_rows.json); `tabpilot validate` and
training keep Great Expectations itself, with its Data Docs. This evaluates the expectation
types the contract is built from with Great Expectations' semantics (nulls skipped by value
checks, `mostly`, strict bounds); rows that meet any other expectation type (a user's own) are
checked by Great Expectations itself. tests/unit/test_request_check.py holds both to
the same verdicts.
"""
from __future__ import annotations

from functools import cached_property
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.data.request_columns import Columns
from tabpilot.data.validation import Failure, ValidationReport, _explain_types, for_scoring, judgeable, validate

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


class _View:
    """What the checks read of one column: its values and what its pandas dtype would say. Values
    are converted only for the checks that need them (an Arrow text column of 1,000,000 rows takes
    40 ms to become Python objects)."""

    def __init__(self, dtype: str, numeric: bool, text: bool, series: pd.Series | None = None,
                 values: np.ndarray | None = None) -> None:
        self.dtype, self.numeric, self.text, self.series = dtype, numeric, text, series
        self.typed_text = series is not None and isinstance(series.dtype, pd.StringDtype)  # str by its dtype
        if values is not None:
            self.values = values

    @cached_property
    def values(self) -> np.ndarray:
        return self.series.to_numpy()  # type: ignore[union-attr]

    @cached_property
    def present(self) -> np.ndarray:
        if self.series is not None:
            return self.series.notna().to_numpy()
        values = self.values
        return ~np.isnan(values) if values.dtype.kind == "f" else ~pd.isna(values)

    def outside(self, allowed: frozenset[Any]) -> np.ndarray:
        """Where a value is not in `allowed` (a gap counts as outside; callers skip gaps)."""
        if self.typed_text:
            return ~self.series.isin(list(allowed)).to_numpy()  # type: ignore[union-attr]
        return np.array([v not in allowed for v in self.values], dtype=bool)


def _series_view(series: pd.Series) -> _View:
    return _View(series.dtype.name, pd.api.types.is_numeric_dtype(series),
                 isinstance(series.dtype, pd.StringDtype) or series.dtype == object, series=series)


def _array_view(values: np.ndarray) -> _View:
    """A Columns array (float64 numbers or text objects) as normalise's frame would hold it."""
    numeric = values.dtype.kind == "f"
    return _View("float64" if numeric else "str", numeric, not numeric, values=values)


def _column_result(kind: str, kwargs: dict[str, Any], name: str, view: _View) -> tuple[bool, Any, list[Any]]:
    """(holds, observed, unexpected examples) of one column expectation."""
    mostly = float(kwargs.get("mostly", 1.0))
    if kind == "expect_column_values_to_not_be_null":
        present = view.present
        share = 1.0 - float(present.mean()) if len(present) else 0.0
        return share <= 1.0 - mostly + 1e-12, round(100 * share, 3), []
    if kind == "expect_column_values_to_be_between":
        if not view.numeric:
            return False, f"column '{name}' holds text where numbers are expected", []
        values, present = view.values, view.present
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
        bad = view.outside(_allowed(kwargs["value_set"]))
        if not bad.any():
            return True, 0.0, []
        values, present = view.values, view.present
        share = _share_unexpected(bad, present)
        return share <= 1.0 - mostly + 1e-12, round(100 * share, 3), [v for v in values[bad & present][:5]]
    if kind == "expect_column_values_to_be_unique":
        seen = view.series[view.present] if view.series is not None else pd.Series(view.values[view.present])
        dup = seen.duplicated(keep=False).to_numpy()
        return not dup.any(), round(100 * float(dup.mean()) if len(dup) else 0.0, 3), seen[dup].head(5).tolist()
    if kind == "expect_column_values_to_be_in_type_list":
        if view.dtype != "object":
            return view.dtype in kwargs["type_list"], view.dtype, []
        names = {type(v).__name__ for v in view.values[view.present]}
        return names <= set(kwargs["type_list"]), sorted(names), []
    if kind == "expect_column_values_to_be_of_type":
        expected = kwargs["type_"]
        if expected == "datetime64":
            return view.dtype.startswith("datetime64"), view.dtype, []
        if expected == "str":
            return view.text and (view.typed_text or all(map(isinstance, view.values[view.present], repeat(str)))), \
                view.dtype, []
    raise KeyError(kind)


def check_request(frame: pd.DataFrame | Columns, contract: dict[str, Any], warnings: bool = False) -> ValidationReport:
    """The contract's error-severity expectations on `frame` (prediction input: the target is not
    required), and its warnings too if `warnings`: the verdict and failures `validation.validate`
    gives. Columns (a small request's arrays) are checked as the frame `io.normalise` makes of them."""
    arrays = isinstance(frame, Columns)
    views: dict[str, _View] = {}
    expectations = [e for e in judgeable(for_scoring(contract["suite"]["expectations"], contract["target"]),
                                         len(frame)) if warnings or _severity(e) == "error"]
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
            failures.append(Failure(kind, column, observed, examples, _severity(expectation),
                                    str(meta.get("check", "user"))))
    if failures and arrays:
        frame = frame.frame
    failures = _explain_types(failures, frame, contract.get("columns", {}))
    failures.sort(key=lambda f: (f.column is not None, f.column or "", f.expectation))  # validate's order
    return ValidationReport(success=not any(f.severity == "error" for f in failures), evaluated=len(expectations),
                            failures=failures)


def _severity(expectation: dict[str, Any]) -> str:
    return "error" if (expectation.get("meta") or {}).get("severity", "error") == "error" else "warning"
