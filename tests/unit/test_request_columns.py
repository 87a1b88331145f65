"""A small request read as arrays (tabpilot.data.request_columns) is answered exactly as the pandas path
answers it: the same predictions, the same refusals with the same words, compiled or not."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tabpilot.data.files import normalise
from tabpilot.data.request_columns import Columns, from_payload
from tabpilot.data.validation import build_contract
from tabpilot.ensemble.model import EnsembleModel
from tabpilot.registry.serving import BadRequest, Scorer, parse
from tests.unit.test_compiled import SETTINGS, _fitted
from tests.unit.test_request_check import STRICT, _requests
from tests.unit.test_validation import TARGET, _training_frame


def _plain(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _bodies(frame: pd.DataFrame) -> list[bytes]:
    """The rows as a client sends them: nulls for gaps; infinities as Python's json writes them."""
    rows = [[_plain(v) for v in row] for row in frame.astype(object).itertuples(index=False)]
    records = [dict(zip(map(str, frame.columns), row, strict=True)) for row in rows]
    columns = {str(c): [r[i] for r in rows] for i, c in enumerate(frame.columns)}
    return [json.dumps(payload).encode() for payload in (
        {"dataframe_split": {"columns": list(map(str, frame.columns)), "data": rows}},
        {"dataframe_records": records}, {"inputs": columns})]


def _answer(scorer: Scorer, rows: pd.DataFrame | Columns) -> tuple[str, Any]:
    try:
        return "scored", scorer.score(rows)
    except BadRequest as error:
        return "refused", str(error)


@pytest.fixture(scope="module")
def models() -> tuple[pd.DataFrame, list[EnsembleModel]]:
    train = _training_frame()
    X = normalise(train.drop(columns=TARGET))
    y = (train[TARGET] == "yes").to_numpy(dtype=int)
    members = [_fitted("binary", family, SETTINGS[1], X, y) for family in ("hist_gb", "linear", "random_forest")]
    compiled, plain = (EnsembleModel(members, [1.0, 2.0, 1.0], "binary", ["no", "yes"]).fit() for _ in range(2))
    assert compiled.compile(X.head(30), seed=0)["compiled"] == 6
    return train, [compiled, plain]


@pytest.mark.parametrize("strict", [False, True], ids=["defaults", "every-check-an-error"])
def test_a_small_request_as_arrays_gets_the_pandas_paths_answer(models: tuple, strict: bool) -> None:
    from tabpilot.core.config import ValidateConfig

    train, ensembles = models
    contract = json.loads(json.dumps(build_contract(train, TARGET, STRICT if strict else ValidateConfig())))
    requests = [*_requests(train), normalise(train.drop(columns=TARGET)).head(3).assign(sex=[None, "male", None]),
                normalise(train.drop(columns=TARGET)).head(2).assign(fare=["12", 3.0])]
    as_arrays, outcomes = 0, set()
    for model in ensembles:
        scorer = Scorer(model, contract)
        for request in requests:
            for body in _bodies(request):
                rows = parse(body, "application/json", contract)
                as_arrays += isinstance(rows, Columns)
                answer = _answer(scorer, rows)
                assert answer == _answer(scorer, parse(body, "application/json")), (request.head(2), body[:200])
                outcomes.add(answer[0])
    assert outcomes == {"scored", "refused"}
    # Small requests of numbers and text take the arrays; the 40-row ones, a text where a number
    # belongs and a column too many or too few go the pandas way.
    assert 0.5 * len(requests) * 6 < as_arrays < len(requests) * 6, as_arrays


def test_arrays_are_what_normalise_makes_of_the_rows() -> None:
    train = _training_frame()
    contract = build_contract(train, TARGET, STRICT)
    frame = normalise(train.drop(columns=TARGET)).head(5)
    frame.loc[1, "age"], frame.loc[2, "sex"] = np.nan, None
    rows = parse(_bodies(frame)[0], "application/json", contract)
    assert isinstance(rows, Columns) and len(rows) == 5
    pd.testing.assert_frame_equal(rows.frame, normalise(frame).reset_index(drop=True), check_column_type=False)
    assert rows["age"].dtype == np.float64 and rows["sex"].dtype == object and pd.isna(rows["sex"][2])
    # booleans, datetimes, unknown shapes: the pandas path reads them
    assert from_payload({"dataframe_split": {"columns": ["age"], "data": [[True]]}}, contract) is None
    assert from_payload({"dataframe_records": [{"age": 1.0}, {"sex": "male"}]}, contract) is None
    assert from_payload({"dataframe_split": {"columns": list(frame.columns), "data": []}}, contract) is None
