"""The server's contract check gives Great Expectations' verdict on every kind of request."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpilot.core.config import Severities, UserExpectation, ValidateConfig
from tabpilot.data.files import normalise
from tabpilot.data.request_check import check_request
from tabpilot.data.validation import build_contract, validate
from tests.unit.test_validation import TARGET, _training_frame

# Every check an error, so each kind of expectation can decide a verdict; plus two of the user's own.
STRICT = ValidateConfig(severity=Severities(**dict.fromkeys(Severities.model_fields, "error")), expectations=[
    UserExpectation(expectation="expect_column_values_to_be_between", kwargs={"column": "age", "min_value": 0,
                                                                               "max_value": 120}),
    UserExpectation(expectation="expect_column_values_to_be_in_set",
                    kwargs={"column": "sex", "value_set": ["female", "male"], "mostly": 0.5})])


def _requests(train: pd.DataFrame) -> list[pd.DataFrame]:
    rows = normalise(train.drop(columns=TARGET)).head(8).reset_index(drop=True)
    one = rows.head(1)
    big = normalise(train.drop(columns=TARGET)).head(40).reset_index(drop=True)
    half = np.arange(40) < 20
    return [
        big, big.assign(age=big["age"].where(~half)), big.assign(sex=np.where(half, "alien", big["sex"])),
        big.assign(age=np.where(half, 150.0, big["age"])),
        rows, one, rows.drop(columns="fare"), rows.assign(extra=1.0), one.assign(age=-500.0),
        rows.assign(age=[-1.0] + [30.0] * 7), one.assign(age=np.nan), rows.assign(age=np.inf),
        one.assign(fare="cheap"), rows.assign(sex=["alien"] * 3 + ["male"] * 5), rows.assign(sex=["x"] * 8),
        rows.assign(passengerClass="9th"), rows.assign(ticket=1000.0), one.assign(ticket=5000.0),
        rows.assign(age=200.0), one.assign(sex=None), rows.assign(fare=-1e9),
    ]


@pytest.mark.parametrize("cfg", [ValidateConfig(), STRICT], ids=["defaults", "every-check-an-error"])
def test_the_request_check_and_great_expectations_agree(cfg: ValidateConfig) -> None:
    train = _training_frame()
    contract = build_contract(train, TARGET, cfg)
    verdicts, warned = [], set()
    for request in _requests(train):
        fast, slow = check_request(request, contract), validate(request, contract, require_target=False)
        errors = sorted((f.expectation, f.column) for f in slow.failures if f.severity == "error")
        assert fast.success == slow.success, (request.head(2), errors)
        assert sorted((f.expectation, f.column) for f in fast.failures) == errors
        # With its warnings (what `tabpilot predict` prints), every failure Great Expectations finds.
        full = check_request(request, contract, warnings=True)
        assert full.success == slow.success
        assert [(f.expectation, f.column, f.severity) for f in full.failures] == \
            [(f.expectation, f.column, f.severity) for f in slow.failures]
        warned.update(f.expectation for f in full.failures if f.severity == "warning")
        verdicts.append(fast.success)
    assert True in verdicts and False in verdicts  # the requests reach both verdicts
    assert warned or cfg is STRICT  # and, with the default severities, some warnings


def test_an_expectation_it_does_not_evaluate_goes_to_great_expectations() -> None:
    train = _training_frame()
    cfg = ValidateConfig(expectations=[UserExpectation(expectation="expect_column_mean_to_be_between",
                                                       kwargs={"column": "age", "min_value": 0, "max_value": 50})])
    contract = build_contract(train, TARGET, cfg)
    request = normalise(train.drop(columns=TARGET)).head(5).assign(age=90.0)
    report = check_request(request, contract)
    assert not report.success and any(f.expectation == "expect_column_mean_to_be_between" for f in report.failures)


def test_a_rate_is_judged_on_a_batch_large_enough_to_have_one() -> None:
    train = _training_frame()
    contract = build_contract(train, TARGET, ValidateConfig())
    rows = normalise(train.drop(columns=TARGET)).iloc[1:41].reset_index(drop=True)
    one_null = rows.head(1).assign(age=np.nan)  # 100% nulls, but of one row: scored, as predict scores it
    assert check_request(one_null, contract).success and validate(one_null, contract, require_target=False).success
    many = rows.assign(age=rows["age"].where(np.arange(40) >= 20))  # half the ages missing, of 40 rows
    failed = check_request(many, contract)
    assert not failed.success and [(f.check, f.column) for f in failed.failures] == [("nulls", "age")]


def test_a_one_row_request_with_a_null_in_a_text_column_is_text_by_the_contract() -> None:
    train = _training_frame()
    contract = build_contract(train, TARGET, ValidateConfig())
    # As JSON brings it: the null of a text column arrives without a type (here, every column as objects).
    raw = train.drop(columns=TARGET).head(1).astype(object).assign(sex=[None])
    guessed = normalise(raw)
    assert guessed["sex"].dtype == "float64"  # nothing in the column says it is text
    assert not check_request(guessed, contract).success
    typed = normalise(raw, contract["columns"])
    assert isinstance(typed["sex"].dtype, pd.StringDtype) and typed["sex"].isna().all()
    assert check_request(typed, contract).success and validate(typed, contract, require_target=False).success


def test_rows_to_score_may_outnumber_the_training_rows_a_hundred_times() -> None:
    """The row-count cap guards training data against a wrong file; a file to score has no cap."""
    train = _training_frame()
    contract = build_contract(train, TARGET, ValidateConfig())
    many = pd.concat([train] * 101, ignore_index=True)
    as_training = validate(many, contract)  # as training data: refused for its size
    assert [f.expectation for f in as_training.failures if f.severity == "error"] == \
        ["expect_table_row_count_to_be_between"]
    rows = normalise(many.drop(columns=TARGET))
    assert check_request(rows, contract, warnings=True).success
    assert validate(rows, contract, require_target=False).success
