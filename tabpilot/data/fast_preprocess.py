"""A fitted preprocessing ColumnTransformer as numpy work: the same numbers, without its pandas pass.

One row through a ColumnTransformer with pandas output costs a few milliseconds of column selection,
validation and concatenation per fitted copy; an ensemble of bags holds many. Compiled, a part is a
lookup table (categorical encoders: their output for every level they know, read off the fitted
encoder itself), a few array operations (imputing and scaling numbers) or, for what is not known
here, the fitted part itself. `compile_preprocessor` checks its result against the original on
rows it is given and returns None where they differ, so a caller keeps the original.
"""
from __future__ import annotations

import re
from itertools import chain, repeat
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from tabpilot.data.preprocessing import MISSING, _to_object
from tabpilot.data.request_columns import Columns

UNSEEN = "\x00tabpilot-unseen-level"


def same(a: np.ndarray, b: np.ndarray, tolerance: float = 1e-9, relative: bool = True) -> bool:
    """Equal shapes and values within `tolerance` (absolute, and, if `relative`, relative to the
    size), NaN equal to NaN."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=tolerance if relative else 0.0, atol=tolerance,
                                                   equal_nan=True))


class Rows:
    """One request's rows, each column converted once for every compiled part that reads it: a
    frame, or a small request's arrays (tabpilot.data.request_columns), already float64 or text."""

    def __init__(self, frame: pd.DataFrame | Columns) -> None:
        self.source = frame
        self._numbers: dict[str, np.ndarray] = {}
        self._objects: dict[str, np.ndarray] = {}
        self._tokens: dict[tuple[str, str], list[list[str]]] = {}
        self._texts: dict[str, list[str]] = {}
        self._stats: dict[str, np.ndarray] = {}
        self._levels: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return len(self.source)

    @property
    def frame(self) -> pd.DataFrame:
        return self.source.frame if isinstance(self.source, Columns) else self.source

    def numbers(self, column: str) -> np.ndarray:
        if column not in self._numbers:
            values = self.source[column]
            self._numbers[column] = values.astype(float) if isinstance(values, np.ndarray) \
                else values.to_numpy(dtype=float)
        return self._numbers[column]

    def texts(self, column: str) -> list[str]:
        """The column's values as TextStats reads them: text, "" for a gap."""
        if column not in self._texts:
            self._texts[column] = ["" if pd.isna(v) else str(v) for v in self.objects(column)]
        return self._texts[column]

    def text_stats(self, column: str) -> np.ndarray:
        """Each text's length and whitespace-separated token count, as two float columns."""
        if column not in self._stats:
            text = self.texts(column)
            self._stats[column] = np.column_stack([np.fromiter(map(len, text), float, len(text)),
                                                   np.fromiter(map(len, map(str.split, text)), float, len(text))])
        return self._stats[column]

    def tokens(self, column: str, split: Any, key: str) -> list[list[str]]:
        """The column's texts split by `split` (texts -> token lists), once per request for every part
        that splits alike (each fold's TF-IDF has its own vocabulary but the same analyzer)."""
        if (column, key) not in self._tokens:
            self._tokens[column, key] = split(self.texts(column))
        return self._tokens[column, key]

    def levels(self, column: str) -> list[str]:
        """The column's values as the categorical tables look them up: text as it is, MISSING for a
        gap, anything else as its text (once per request for every fold's table)."""
        if column not in self._levels:
            self._levels[column] = [v if type(v) is str else MISSING if pd.isna(v) else str(v)
                                    for v in self.objects(column)]
        return self._levels[column]

    def objects(self, column: str) -> np.ndarray:
        if column not in self._objects:
            values = self.source[column]
            self._objects[column] = values.astype(object) if isinstance(values, np.ndarray) \
                else values.to_numpy(dtype=object)
        return self._objects[column]


def _levels(encoder: Any) -> list[list[Any]] | None:
    """The levels a fitted categorical encoder knows, per input column (None: not an encoder known here)."""
    inner = getattr(encoder, "encoder_", encoder)  # tabpilot's TargetEncoding wraps scikit-learn's
    if hasattr(inner, "categories_"):
        return [list(c) for c in inner.categories_]
    if hasattr(encoder, "shares_"):  # FrequencyEncoder
        return [list(encoder.shares_[c]) for c in encoder.shares_]
    return None


def _categorical(part: Any) -> tuple[Pipeline, list[Any]] | None:
    """A part that encodes categories ([to_object, encoder]), alone or followed by column-wise
    imputing and scaling of the codes: (the encoding pipeline, the steps after it), else None."""
    inner = part.steps[0][1] if isinstance(part, Pipeline) and isinstance(part.steps[0][1], Pipeline) else part
    if not isinstance(inner, Pipeline) or not isinstance(inner.steps[0][1], FunctionTransformer) \
            or inner.steps[0][1].func is not _to_object:
        return None
    after = [step for _, step in part.steps[1:]] if inner is not part else []
    if not all(isinstance(step, SimpleImputer | StandardScaler) for step in after):
        return None
    return inner, after


class _Table:
    """A categorical part: for each input column, its part of the output looked up by level."""

    def __init__(self, part: Pipeline, columns: list[str]) -> None:
        found = _categorical(part)
        if found is None:
            raise ValueError("not a categorical part")
        part, after = found
        levels = _levels(part.steps[-1][1])
        if len(part.steps) != 2 or levels is None or len(levels) != len(columns):
            raise ValueError("not a known categorical encoder")
        known = [[MISSING, *(str(v) for v in lv if str(v) != MISSING), UNSEEN] for lv in levels]
        depth = max(len(k) for k in known)
        probe = pd.DataFrame({c: k + [k[0]] * (depth - len(k)) for c, k in zip(columns, known, strict=True)},
                             dtype=object)
        # The probe holds no gaps, so the pipeline's first step (gaps to MISSING, as objects) would
        # pass it through unchanged: the encoder alone reads it, in a fraction of the time.
        encoder = part.steps[-1][1]

        def encode(frame: pd.DataFrame) -> np.ndarray:
            values = encoder.transform(frame)
            for step in after:  # column by column: which input an output comes from stays the same
                values = step.transform(values)
            return np.asarray(values, dtype=float)

        out = encode(probe)
        # Which input column each output comes from, in log2(columns + 1) transforms: column j is
        # numbered j + 1, probe b rolls by one row (so every non-constant output it feeds changes) the
        # columns whose number has bit b set, and an output's number is the sum of the bits whose probe
        # changed it; 0 (no probe changed it) is a constant output.
        code = np.zeros(out.shape[1], dtype=int)
        for bit in range(int(len(columns)).bit_length()):
            turned = probe.copy()
            for j, c in enumerate(columns):
                if (j + 1) >> bit & 1:
                    turned[c] = np.roll(probe[c].to_numpy(), 1)
            changed = ~np.isclose(np.asarray(encode(turned), dtype=float), out, equal_nan=True).all(axis=0)
            code[changed] += 1 << bit
        if (code > len(columns)).any():
            raise ValueError("an output column depends on more than one input column")
        owner = code - 1
        self.columns = columns
        self.width = out.shape[1]
        self.constant = out[0, owner < 0]
        self.constant_at = np.flatnonzero(owner < 0)
        self.outputs = [np.flatnonzero(owner == j) for j in range(len(columns))]
        self.rows = [{v: i for i, v in enumerate(k)} for k in known]
        self.tables = [out[:, self.outputs[j]] for j in range(len(columns))]
        self.unseen = [len(k) - 1 for k in known]

    def transform(self, rows: Rows) -> np.ndarray:
        result = np.empty((len(rows), self.width))
        result[:, self.constant_at] = self.constant
        for j, c in enumerate(self.columns):
            result[:, self.outputs[j]] = self.tables[j][self._index(j, rows.levels(c))]
        return result

    def _index(self, j: int, levels: list[str]) -> list[int]:
        """Each value's row of table j: its level's, MISSING's for a hole, UNSEEN's for a new level.
        (A dict lookup per value beats pandas' vectorised indexing 3-10x at 1,000 rows: no copies.)"""
        return list(map(self.rows[j].get, levels, repeat(self.unseen[j], len(levels))))


class _Levels:
    """A one-hot part with a column for every level (tabpilot.data.preprocessing's every_level): the
    rows' levels as a sparse matrix, as the encoder makes it. Tabulated as `_Table` does it, 6,000
    levels would take 6,000 x 6,000 floats, and every batch of 20,000 rows as many columns."""

    def __init__(self, part: Pipeline, columns: list[str]) -> None:
        found = _categorical(part)
        encoder = found[0].steps[-1][1] if found is not None and not found[1] else None
        if not isinstance(encoder, OneHotEncoder) or not encoder.sparse_output or encoder.drop is not None \
                or encoder.handle_unknown != "ignore" or getattr(encoder, "infrequent_categories_", None):
            raise ValueError("not a one-hot part of every level")
        self.columns = columns
        self.width = sum(len(c) for c in encoder.categories_)
        starts = np.cumsum([0, *(len(c) for c in encoder.categories_)])
        # A level's column; a gap is MISSING, a level like any other (no column if never seen)
        self.index = [{(v if type(v) is str else str(v)): int(start) + i for i, v in enumerate(cats)}
                      for start, cats in zip(starts, encoder.categories_, strict=False)]

    def transform(self, rows: Rows) -> Any:
        from scipy import sparse

        n = len(rows)
        found = [np.fromiter(map(index.get, rows.levels(c), repeat(-1, n)), dtype=np.int64, count=n)
                 for c, index in zip(self.columns, self.index, strict=True)]
        columns = np.stack(found, axis=1) if found else np.empty((n, 0), dtype=np.int64)
        row, col = np.nonzero(columns >= 0)
        return sparse.csr_matrix((np.ones(len(row)), (row, columns[row, col])), shape=(n, self.width))


def _interactions(part: Any, rows: Rows, cache: dict[str, Any]) -> np.ndarray:
    """`features.Interactions` on arrays: the same operations on the same float64 values, in its order."""
    x = {c: rows.numbers(c) for c in part.columns_}
    out = []
    for c in part.columns_:
        out += [x[c] ** 2, np.sign(x[c]) * np.log1p(np.abs(x[c]))]
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, a in enumerate(part.columns_):
            for b in part.columns_[i + 1:]:
                out += [x[a] + x[b], x[a] - x[b], x[a] * x[b], np.where(x[b] != 0, x[a] / x[b], np.nan)]
    values = np.column_stack(out) if out else np.empty((len(rows), 0))
    values[np.isinf(values)] = np.nan
    return values


def _splitter(vectorizer: Any) -> Any:
    """texts -> token lists, as the vectorizer's analyzer splits them. Its default word analyzer is
    a lower-cased regex findall, called here without the analyzer's per-text Python layers (3-4x
    faster on a 100,000-row file); any other setting goes through the analyzer itself."""
    if vectorizer.analyzer == "word" and vectorizer.ngram_range == (1, 1) and vectorizer.tokenizer is None \
            and vectorizer.preprocessor is None and vectorizer.stop_words is None \
            and vectorizer.strip_accents is None and vectorizer.input == "content":
        findall = re.compile(vectorizer.token_pattern).findall
        if vectorizer.lowercase:
            return lambda texts: list(map(findall, map(str.lower, texts)))
        return lambda texts: list(map(findall, texts))
    analyze = vectorizer.build_analyzer()
    return lambda texts: list(map(analyze, texts))


def _text(part: Any, rows: Rows, cache: dict[str, Any]) -> np.ndarray:
    """`features.TextStats` on lists: length, token count and l2-normalised TF-IDF weights per column."""
    blocks = []
    for c in part.columns_:
        blocks.append(rows.text_stats(c))
        vectorizer = part.vectorizers_[c]
        if vectorizer is None:
            continue
        if c not in cache:
            # The analyzer's settings (not its vocabulary) say how it splits: equal settings, equal tokens.
            settings = {k: v for k, v in vectorizer.get_params().items() if k not in ("max_features", "min_df",
                                                                                      "max_df", "vocabulary")}
            cache[c] = (_splitter(vectorizer), repr(sorted(settings.items())))
        split, key = cache[c]
        tokens = rows.tokens(c, split, key)
        vocabulary, idf = vectorizer.vocabulary_, vectorizer.idf_
        # Term counts as one scatter-add of (row, vocabulary index) pairs; tokens outside the
        # vocabulary are dropped.
        counts = np.fromiter(map(len, tokens), np.int64, len(tokens))
        index = np.fromiter(map(vocabulary.get, chain.from_iterable(tokens), repeat(-1)), np.int64,
                            int(counts.sum()))
        row = np.repeat(np.arange(len(tokens)), counts)
        known = index >= 0
        weights = np.zeros((len(tokens), len(idf)))
        np.add.at(weights, (row[known], index[known]), 1.0)
        weights *= idf
        norms = np.sqrt((weights ** 2).sum(axis=1))
        norms[norms == 0.0] = 1.0
        blocks.append(weights / norms[:, None])
    return np.hstack(blocks)


def _source(step: Any) -> Any:
    """The array function for a part's first step that makes numbers from raw columns, if known here."""
    from tabpilot.data.features import Interactions, TextStats

    if isinstance(step, Interactions):
        return _interactions
    if isinstance(step, TextStats) and all(v is None or (v.norm == "l2" and v.use_idf and not v.sublinear_tf
                                                        and not v.binary) for v in step.vectorizers_.values()):
        return _text
    return None


class _Numbers:
    """Numbers as they are or constructed from each other, then median-imputed (with missing
    indicators) and standardised where the part does so."""

    def __init__(self, part: Any, columns: list[str]) -> None:
        self.columns = columns
        steps = [] if isinstance(part, str) and part == "passthrough" else \
            [s for _, s in part.steps] if isinstance(part, Pipeline) else [part]
        # A fitted ColumnTransformer holds "passthrough" as a FunctionTransformer without a function.
        steps = [s for s in steps if not (isinstance(s, FunctionTransformer) and s.func is None)]
        self.make = _source(steps[0]) if steps else None
        self.cache: dict[str, Any] = {}  # what `make` builds once per process (text analyzers)
        self.source = steps.pop(0) if self.make is not None else None
        for step in steps:
            if not isinstance(step, SimpleImputer | StandardScaler) or (
                    isinstance(step, SimpleImputer) and step.strategy not in ("median", "mean", "constant")):
                raise ValueError("not a numeric part known here")
        self.steps = steps

    def __getstate__(self) -> dict[str, Any]:
        return {**vars(self), "cache": {}}

    def transform(self, rows: Rows) -> np.ndarray:
        if self.make is not None:
            out = self.make(self.source, rows, self.cache)
        else:
            out = np.column_stack([rows.numbers(c) for c in self.columns])
        for step in self.steps:
            if isinstance(step, SimpleImputer):
                missing = np.isnan(out)
                imputed = np.where(missing, np.asarray(step.statistics_, dtype=float), out)
                if step.indicator_ is not None:
                    imputed = np.hstack([imputed, missing[:, step.indicator_.features_].astype(float)])
                out = imputed
            else:
                if step.with_mean:
                    out = out - step.mean_
                if step.with_std:
                    out = out / step.scale_
        return out


class _Kept:
    """A part compiled nowhere here (dates, and any transformer not known above): the fitted part itself."""

    def __init__(self, part: Any, columns: list[str]) -> None:
        self.part, self.columns = part, columns

    def transform(self, rows: Rows) -> np.ndarray:
        return np.asarray(self.part.transform(rows.frame[self.columns]), dtype=float)


def _compile_part(part: Any, columns: list[str]) -> Any:
    if _categorical(part) is not None:
        try:
            return _Levels(part, columns)
        except ValueError:
            pass
        try:
            return _Table(part, columns)
        except ValueError:
            return _Kept(part, columns)
    try:
        return _Numbers(part, columns)
    except (ValueError, AttributeError):
        return _Kept(part, columns)


class FastPreprocessor:
    """A fitted ColumnTransformer's output as one float matrix, part by part."""

    def __init__(self, transformer: Any) -> None:
        self.parts = [_compile_part(part, list(cols)) for _, part, cols in transformer.transformers_
                      if not (isinstance(part, str) and part == "drop") and len(cols)]
        self.names = [str(n) for n in transformer.get_feature_names_out()]

    def transform(self, rows: Rows | pd.DataFrame) -> np.ndarray:
        rows = rows if isinstance(rows, Rows) else Rows(rows)
        blocks = [part.transform(rows) for part in self.parts]
        if any(hasattr(b, "tocsr") for b in blocks):  # a part of every level: sparse, as fitted
            from scipy import sparse

            return sparse.hstack(blocks, format="csr")
        return np.hstack(blocks) if blocks else np.empty((len(rows), 0))

    @property
    def kept_parts(self) -> int:
        return sum(isinstance(p, _Kept) for p in self.parts)


def compile_preprocessor(transformer: Any, rows: pd.DataFrame) -> FastPreprocessor | None:
    """The compiled transformer, or None when it is not a ColumnTransformer or differs on `rows`."""
    if not hasattr(transformer, "transformers_"):
        return None
    fast = FastPreprocessor(transformer)
    # Sums of squares (TF-IDF norms) may round in another order than scikit-learn's sparse code.
    return fast if same(_dense(fast.transform(rows)), _dense(transformer.transform(rows)), 1e-12) else None


def _dense(matrix: Any) -> np.ndarray:
    return np.asarray(matrix.toarray() if hasattr(matrix, "tocsr") else matrix, dtype=float)


def probe_rows(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """`rows`, then a copy with a third of the cells missing and every text cell a level never seen:
    the values a compiled model handles differently from the rows it was trained on, if anywhere."""
    rng = np.random.default_rng(seed)
    holes = rows.copy()
    mask = rng.random(holes.shape) < 1 / 3
    for i, c in enumerate(holes.columns):
        holes[c] = holes[c].mask(mask[:, i])
    unseen = rows.copy()
    for c in unseen.columns:
        if not pd.api.types.is_numeric_dtype(unseen[c]) and not pd.api.types.is_datetime64_any_dtype(unseen[c]):
            unseen[c] = unseen[c].where(unseen[c].isna(), "never seen in training")
    return pd.concat([rows, holes, unseen], ignore_index=True)
