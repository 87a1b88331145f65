"""The data contract: learned from training data, checked on every later batch with Great Expectations.

`build_contract` turns a training frame into a JSON-serialisable contract; `validate` rebuilds the
GX suite from it and returns a `ValidationReport` that never raises on broken data: a missing
column, a wrong type or an out-of-range value becomes a `Failure`, not an exception.
This is the only module that imports great_expectations, and only inside functions (slow import).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.core.config import UserExpectation, ValidateConfig
from tabpilot.core.errors import UserError

_CONTRACT_VERSION = 1
_SUITE_NAME = "tabpilot_contract"
_SITE_NAME = "tabpilot"
# int and float names together, so an int column that arrives as float (or back) still passes;
# "int"/"float" are the native types GX checks value by value in an object column.
_NUMERIC_TYPES = [
    *(f"{p}{b}" for p in ("int", "uint") for b in (8, 16, 32, 64)), "float16", "float32", "float64",
    *(f"{p}{b}Dtype" for p in ("Int", "UInt") for b in (8, 16, 32, 64)), "Float32Dtype", "Float64Dtype",
    "int", "float",
]
_BOOLEAN_TYPES = ["bool", "BooleanDtype"]
_KINDS = {"integer": "numeric", "floating": "numeric", "mixed-integer-float": "numeric",
          "decimal": "numeric", "boolean": "boolean", "string": "string",
          "datetime64": "datetime", "datetime": "datetime"}
_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 5}
# Finite floats lie within +-_LARGEST, so "between" these bounds means "no infinity".
_LARGEST = float(np.finfo(np.float64).max)
_MIN_ROWS_FOR_ID = 50
# A rate ("at most 30% nulls", `mostly` < 1) cannot be judged on a few rows: one null in a one-row
# request is 100%. Smaller batches get the value-by-value checks only (predict and serve alike).
MIN_ROWS_FOR_RATES = 20


@dataclass
class Failure:
    """One expectation that did not hold; every field is JSON-serialisable.

    `observed` is the unexpected percent (0-100) for value checks, {"missing", "unexpected"} for
    the column set, the observed type or count otherwise, and "column missing" when GX could not
    evaluate a column that is absent from the batch.
    """

    expectation: str
    column: str | None
    observed: Any
    unexpected_examples: list
    severity: str
    check: str = "user"


@dataclass
class ValidationReport:
    """The outcome of one validation: `success` is False iff some failure has severity "error"."""

    success: bool
    evaluated: int
    failures: list[Failure]
    docs_index: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line: what failed and what was seen, or how many expectations passed."""
        if not self.failures:
            return f"all {self.evaluated} expectations passed"
        noun = "expectation" if len(self.failures) == 1 else "expectations"
        errors = sum(f.severity == "error" for f in self.failures)
        ordered = sorted(self.failures, key=lambda f: f.severity != "error")  # errors first, order kept
        details = "; ".join(_describe(f) for f in ordered)
        return (f"{len(self.failures)} {noun} failed ({errors} error, {len(self.failures) - errors} warning): "
                f"{details}")

    @property
    def warnings(self) -> list[Failure]:
        return [f for f in self.failures if f.severity != "error"]


def build_contract(df: pd.DataFrame, target: str, cfg: ValidateConfig) -> dict:
    """Learn the contract from training data, and add the user's expectations.

    Returns {"version", "target", "columns": {name: kind}, "suite": GX suite JSON}, where kind is
    numeric, boolean, datetime, string or other. Every expectation carries meta `check` (its kind:
    rows, columns, types, finite, nulls, ranges, categories, unique or user) and `severity`.
    """
    gx = _import_gx()
    df = _normalise(df)
    gxe = gx.expectations
    severity = cfg.severity

    def meta(check: str) -> dict:
        return {"check": check, "severity": getattr(severity, check)}

    kinds = {name: _kind(df[name]) for name in df.columns}
    suite: list[Any] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=max(100 * len(df), 1000), meta=meta("rows")),
        gxe.ExpectTableColumnsToMatchSet(column_set=list(df.columns), exact_match=True, meta=meta("columns")),
    ]
    for name, kind in kinds.items():
        column = df[name]
        if kind == "numeric":
            suite.append(gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=_NUMERIC_TYPES,
                                                              meta=meta("types")))
            suite.append(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=-_LARGEST, max_value=_LARGEST,
                                                           meta=meta("finite")))
            # Bounds come from finite values only, so an infinity in a later batch is out of range.
            values = pd.to_numeric(column, errors="coerce").astype("float64")
            values = values[np.isfinite(values)]
            if len(values):
                low, high = float(values.min()), float(values.max())
                margin = cfg.range_margin * (high - low)
                suite.append(gxe.ExpectColumnValuesToBeBetween(
                    column=name, min_value=low - margin, max_value=high + margin, meta=meta("ranges")))
        elif kind == "boolean":
            suite.append(gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=_BOOLEAN_TYPES,
                                                              meta=meta("types")))
        elif kind == "datetime":
            suite.append(gxe.ExpectColumnValuesToBeOfType(column=name, type_="datetime64", meta=meta("types")))
        elif kind == "string":
            # "str" passes both pandas 3 str dtype and object columns holding Python strings.
            suite.append(gxe.ExpectColumnValuesToBeOfType(column=name, type_="str", meta=meta("types")))
            levels = column.dropna().unique()
            if len(levels) <= cfg.max_categories:
                suite.append(gxe.ExpectColumnValuesToBeInSet(
                    column=name, value_set=sorted(str(v) for v in levels),
                    mostly=round(1 - cfg.new_category_allowance, 6), meta=meta("categories")))
        if name != target and _id_like(column, kind):
            suite.append(gxe.ExpectColumnValuesToBeUnique(column=name, meta=meta("unique")))
        mostly = round(max(0.0, 1 - float(column.isna().mean()) - cfg.null_tolerance), 6)
        if mostly > 0:
            suite.append(gxe.ExpectColumnValuesToNotBeNull(column=name, mostly=mostly, meta=meta("nulls")))
    suite.extend(_user_expectation(gxe, i, rule) for i, rule in enumerate(cfg.expectations))
    return {"version": _CONTRACT_VERSION, "target": target, "columns": kinds,
            "suite": _jsonable(gx.ExpectationSuite(name=_SUITE_NAME, expectations=suite).to_json_dict())}


# On the frame a contract was learned from, the learned types, nulls, ranges, categories and
# uniqueness hold by construction (tests/unit/test_validation.py checks it on every dtype);
# these can still fail there, and GX's per-expectation cost is seconds on wide tables.
_CAN_FAIL_ON_OWN_FRAME = ("rows", "columns", "finite", "user")


def checks_that_can_fail(contract: dict) -> tuple[dict, int]:
    """The contract cut to what can fail on the frame it was learned from, and how many it left out."""
    expectations = contract["suite"]["expectations"]
    kept = [e for e in expectations if (e.get("meta") or {}).get("check", "user") in _CAN_FAIL_ON_OWN_FRAME]
    return {**contract, "suite": {**contract["suite"], "expectations": kept}}, len(expectations) - len(kept)


def _id_like(column: pd.Series, kind: str) -> bool:
    """Text or whole numbers, never missing, every value distinct: a key, which should stay unique."""
    if kind not in ("string", "numeric") or len(column) < _MIN_ROWS_FOR_ID or column.isna().any():
        return False
    if kind == "numeric" and not np.all(np.mod(column.to_numpy(dtype=float), 1) == 0):
        return False
    return bool(column.nunique() == len(column))


def _user_expectation(gxe: Any, index: int, rule: UserExpectation) -> Any:
    """An expectation from params.yaml's validate.expectations, or a UserError naming the entry."""
    where = f"validate.expectations[{index}] ({rule.expectation})"
    cls = getattr(gxe, "".join(part.capitalize() for part in rule.expectation.split("_")), None)
    if cls is None:
        raise UserError(f"{where}: no such Great Expectations expectation: use a name from "
                        "https://greatexpectations.io/expectations, e.g. expect_column_values_to_be_between")
    try:
        return cls(**rule.kwargs, meta={"check": "user", "severity": rule.severity})
    except Exception as error:  # GX validates arguments with pydantic; any mistake is the user's
        first = str(error).strip().splitlines()
        raise UserError(f"{where}: invalid arguments ({first[0][:160] if first else type(error).__name__}): "
                        "fix its kwargs in params.yaml") from None


def validate(df: pd.DataFrame, contract: dict, docs_dir: Path | None = None,
             require_target: bool = True) -> ValidationReport:
    """Check a batch against the contract; broken data gives failures, never an exception.

    With require_target False (prediction input) the target is neither required nor checked, and
    is ignored when present. With docs_dir, GX Data Docs are built there and `docs_index` names
    its index.html. Only a contract that is not a version-1 contract raises (UserError).
    """
    if not isinstance(contract, dict) or contract.get("version") != _CONTRACT_VERSION or "suite" not in contract:
        raise UserError("the data contract is malformed or from another version: rebuild it from "
                        "the training data")
    gx = _import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    df = _normalise(df)
    suite_dict = dict(contract["suite"])
    if not require_target:
        suite_dict["expectations"] = for_scoring(suite_dict["expectations"], contract["target"])
        df = df.drop(columns=[contract["target"]], errors="ignore")
    suite_dict["expectations"] = judgeable(suite_dict["expectations"], len(df))

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = context.suites.add(gx.ExpectationSuite(**suite_dict))
    batch_definition = (context.data_sources.add_pandas("batch_source")
                        .add_dataframe_asset("batch").add_batch_definition_whole_dataframe("whole"))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="contract_check", data=batch_definition, suite=suite))
    try:
        result, docs_index = _run(context, definition, df, docs_dir)
    finally:
        # GX keeps its last context, and with it the batch: the whole table (400 MB of a 950k-row one)
        # for the rest of the run.
        context.data_sources.delete("batch_source")
    failures = _explain_types([_failure(r, set(df.columns)) for r in result.results if not r.success],
                              df, contract.get("columns", {}))
    # GX returns results in no stable order; table-level first, then by column, reads best.
    failures.sort(key=lambda f: (f.column is not None, f.column or "", f.expectation))
    return ValidationReport(success=not any(f.severity == "error" for f in failures),
                            evaluated=len(result.results), failures=failures, docs_index=docs_index)


def _run(context: Any, definition: Any, df: pd.DataFrame, docs_dir: Path | None) -> tuple[Any, str | None]:
    """The validation definition's result on `df`, and with `docs_dir` its Data Docs' index page."""
    gx = _import_gx()
    docs_index = None
    if docs_dir is None:
        result = definition.run(batch_parameters={"dataframe": df}, result_format=_RESULT_FORMAT)
    else:
        docs_dir = Path(docs_dir).resolve()
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(site_name=_SITE_NAME, site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        })
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name="contract_docs", validation_definitions=[definition], result_format=_RESULT_FORMAT,
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[_SITE_NAME])]))
        run = checkpoint.run(batch_parameters={"dataframe": df})
        result = next(iter(run.run_results.values()))
        docs_index = str(docs_dir / "index.html")
    return result, docs_index


def _explain_types(failures: list[Failure], df: pd.DataFrame, kinds: dict[str, str]) -> list[Failure]:
    """A column of the wrong type: name the values that are not numbers, and drop the range checks
    GX could not even evaluate on it (they only repeat the type failure)."""
    mistyped = {f.column for f in failures if f.check == "types" and f.column in df.columns}
    kept = []
    for failure in failures:
        if failure.column in mistyped and failure.check in ("finite", "ranges") and not failure.unexpected_examples:
            continue
        if failure.column in mistyped and failure.check == "types" and kinds.get(failure.column) == "numeric":
            column = df[failure.column]
            bad = column[column.notna() & pd.to_numeric(column, errors="coerce").isna()]
            failure.unexpected_examples = _jsonable(list(dict.fromkeys(bad.astype(str)))[:5])
        kept.append(failure)
    return kept


def _import_gx() -> Any:
    # Set before the first import, which is when GX reads it; an explicit user setting wins.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """A shallow copy GX can check: string column names, categoricals as their plain values."""
    out = df.copy(deep=False)
    out.columns = [str(c) for c in out.columns]
    for position, dtype in enumerate(out.dtypes):
        if isinstance(dtype, pd.CategoricalDtype):
            # GX sees a category column only as "CategoricalDtypeType"; its values are what matter.
            column = out.iloc[:, position]
            try:
                out.isetitem(position, column.astype(dtype.categories.dtype))
            except (TypeError, ValueError):
                out.isetitem(position, column.astype(object))
    return out


def _kind(column: pd.Series) -> str:
    return _KINDS.get(pd.api.types.infer_dtype(column, skipna=True), "other")


def judgeable(expectations: list[dict], rows: int) -> list[dict]:
    """The expectations a batch of `rows` rows can be held to (no rates below MIN_ROWS_FOR_RATES)."""
    if rows >= MIN_ROWS_FOR_RATES:
        return expectations
    return [e for e in expectations if float((e.get("kwargs") or {}).get("mostly", 1.0)) >= 1.0]


def for_scoring(expectations: list[dict], target: str) -> list[dict]:
    """The expectations rows to score are held to: none on the target, and no cap on the row count
    (it guards training data against a wrong file; a file to score may hold any number of rows).
    Copied where changed: the contract stays as it was."""
    kept = []
    for expectation in expectations:
        kwargs = expectation.get("kwargs", {})
        if kwargs.get("column") == target:
            continue
        if "column_set" in kwargs:
            kwargs = {**kwargs, "column_set": [c for c in kwargs["column_set"] if c != target]}
            kept.append({**expectation, "kwargs": kwargs})
        elif (expectation.get("meta") or {}).get("check") == "rows":
            kept.append({**expectation, "kwargs": {**kwargs, "max_value": None}})
        else:
            kept.append(expectation)
    return kept


def _failure(result: Any, present: set[str]) -> Failure:
    """Turn one failed GX result, including one that raised, into a JSON-safe Failure."""
    config = result.expectation_config
    column = config.kwargs.get("column")
    details = result.result or {}
    error = _exception_message(result.exception_info)
    if error is not None:
        observed: Any = "column missing" if column is not None and column not in present else error
    elif isinstance(details.get("details", {}).get("mismatched"), dict):
        observed = details["details"]["mismatched"]
    elif details.get("unexpected_percent") is not None:
        observed = round(float(details["unexpected_percent"]), 3)
    else:
        observed = details.get("observed_value")
    meta = config.meta or {}
    return Failure(expectation=config.type, column=column, observed=_jsonable(observed),
                   unexpected_examples=_jsonable(list(details.get("partial_unexpected_list") or [])[:5]),
                   severity="warning" if meta.get("severity", "error") != "error" else "error",
                   check=str(meta.get("check", "user")))


def _exception_message(info: dict | None) -> str | None:
    # GX reports either one flat record or one record per metric that failed to resolve.
    if not info:
        return None
    records = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    messages = [r.get("exception_message") or "exception" for r in records if r.get("raised_exception")]
    return messages[0] if messages else None


def _describe(failure: Failure) -> str:
    observed = failure.observed
    if isinstance(observed, float):
        seen = f"{observed:.1f}% unexpected"
    elif isinstance(observed, dict):
        seen = ", ".join(f"{key} {value}" for key, value in observed.items() if value)
    else:
        seen = str(observed)
    where = f"({failure.column})" if failure.column is not None else ""
    text = f"[{failure.severity}: {failure.check}] {failure.expectation}{where} observed {seen}"
    return f"{text} e.g. {failure.unexpected_examples}" if failure.unexpected_examples else text


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN as None, infinities as "inf"/"-inf"."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
