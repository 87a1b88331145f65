"""The data contract: a clean batch passes, every kind of breakage fails by name, nothing raises."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.core.config import ValidateConfig
from tabpilot.core.errors import UserError
from tabpilot.data.validation import ValidationReport, build_contract, checks_that_can_fail, validate

TARGET = "survived"


def _training_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({
        "age": rng.uniform(1, 80, n).round(1),
        "fare": rng.integers(0, 500, n),
        "sex": rng.choice(["female", "male"], n),
        "passengerClass": pd.Categorical(rng.choice(["1st", "2nd", "3rd"], n)),
        "ticket": np.arange(1000, 1000 + n),
        TARGET: rng.choice(["no", "yes"], n),
    })
    frame.loc[::20, "age"] = np.nan  # 5% nulls, so the null check has a tolerance to honour
    return frame


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return _training_frame()


@pytest.fixture(scope="module")
def contract(train: pd.DataFrame) -> dict:
    # Every test validates against the JSON round trip, as the pipeline does after reading it back.
    return json.loads(json.dumps(build_contract(train, TARGET, ValidateConfig()), allow_nan=False))


def _batch(train: pd.DataFrame) -> pd.DataFrame:
    return train.iloc[:60].copy()


def _failed(report: ValidationReport, expectation: str, column: str | None, severity: str = "error",
            check: str | None = None) -> list:
    """The failures of `expectation` on `column`; an error fails the report, a warning alone does not."""
    json.dumps(report.to_dict(), allow_nan=False)
    hits = [f for f in report.failures if f.expectation == expectation and f.column == column
            and (check is None or f.check == check)]
    assert hits, report.summary()
    assert {f.severity for f in hits} == {severity}
    if severity == "error":
        assert report.success is False
    elif len(report.failures) == len(hits):
        assert report.success is True and report.warnings == hits
    assert f"[{severity}: {hits[0].check}] {expectation}" in report.summary()
    return hits


@pytest.mark.parametrize("docs", [False, True])
def test_no_copy_of_the_table_outlives_its_validation(train: pd.DataFrame, contract: dict, tmp_path: Path,
                                                      docs: bool) -> None:
    import gc

    def copies() -> int:  # frames of the batch's shape, the test's own included
        gc.collect()
        return sum(isinstance(o, pd.DataFrame) and o.shape == train.shape for o in gc.get_objects())

    before = copies()
    assert validate(train, contract, docs_dir=tmp_path / "docs" if docs else None).success
    assert copies() == before  # GX's last context kept the whole batch for the rest of a run


def test_contract_round_trips_through_json(train: pd.DataFrame) -> None:
    built = build_contract(train, TARGET, ValidateConfig())
    assert json.loads(json.dumps(built, allow_nan=False)) == built
    assert built["version"] == 1 and built["target"] == TARGET
    assert built["columns"] == {"age": "numeric", "fare": "numeric", "sex": "string",
                                "passengerClass": "string", "ticket": "numeric", TARGET: "string"}
    defaults = ValidateConfig().severity
    checks = {(e["meta"]["check"], e["meta"]["severity"]) for e in built["suite"]["expectations"]}
    assert checks == {(c, getattr(defaults, c)) for c in
                      ("rows", "columns", "types", "finite", "nulls", "ranges", "categories", "unique")}
    unique = [e["kwargs"]["column"] for e in built["suite"]["expectations"] if e["meta"]["check"] == "unique"]
    assert unique == ["ticket"]  # the only column that is whole, complete and distinct


def test_clean_batch_passes(train: pd.DataFrame, contract: dict) -> None:
    report = validate(_batch(train), contract)
    assert report.success, report.summary()
    assert report.failures == [] and report.evaluated > 10
    assert report.summary().startswith("all ")


def _every_dtype_frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "float_nulls": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        "int": rng.integers(-5, 5, n),
        "nullable_int": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 9, n)), dtype="Int64"),
        "uint8": rng.integers(0, 200, n).astype("uint8"),
        "float32": rng.normal(size=n).astype("float32"),
        "bool": rng.random(n) < 0.5,
        "bool_nulls": pd.array(np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.5), dtype="boolean"),
        "text": rng.choice(["a", "b", None], n),
        "str_dtype": pd.array(rng.choice(["x", "y"], n), dtype="str"),
        "category": pd.Categorical(rng.choice(["lo", "mid", "hi"], n)),
        "int_category": pd.Categorical(rng.choice([1, 2, 3], n)),
        "many_levels": [f"level{i}" for i in rng.integers(0, 90, n)],
        "id": [f"key-{i}" for i in range(n)],
        "int_id": np.arange(n) * 7,
        "when": pd.date_range("2020-01-01", periods=n, freq="D"),
        "mixed": [1, "one"] * (n // 2),
        "all_null": [None] * n,
        TARGET: rng.choice([0, 1], n),
    })
    frame.loc[3, "when"] = pd.NaT
    return frame


def test_a_learned_contract_holds_in_full_on_its_own_frame() -> None:
    # The claim behind checks_that_can_fail: only rows, columns, finite and user checks can fail here.
    frame = _every_dtype_frame()
    contract = json.loads(json.dumps(build_contract(frame, TARGET, ValidateConfig()), allow_nan=False))
    assert {e["meta"]["check"] for e in contract["suite"]["expectations"]} >= {
        "types", "nulls", "ranges", "categories", "unique"}
    report = validate(frame, contract)
    assert report.failures == [], report.summary()
    assert report.evaluated == len(contract["suite"]["expectations"])


def test_checks_that_can_fail_still_catch_an_infinity_and_a_user_rule(train: pd.DataFrame) -> None:
    cfg = ValidateConfig.model_validate({"expectations": [
        {"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "fare", "max_value": 100}}]})
    frame = train.assign(age=train["age"].where(train.index != 7, np.inf))
    contract = build_contract(frame, TARGET, cfg)
    checked, left_out = checks_that_can_fail(contract)
    kinds = {e["meta"]["check"] for e in checked["suite"]["expectations"]}
    assert kinds == {"rows", "columns", "finite", "user"}
    assert left_out == len(contract["suite"]["expectations"]) - len(checked["suite"]["expectations"]) > 0
    report = validate(frame, checked)
    assert {(f.check, f.column) for f in report.failures} == {("finite", "age"), ("user", "fare")}


def test_int_column_arriving_as_float_and_object_strings_pass(train: pd.DataFrame, contract: dict) -> None:
    batch = _batch(train).astype({"fare": "float64", "sex": object, "passengerClass": "str"})
    assert validate(batch, contract).success


def test_missing_column_fails(train: pd.DataFrame, contract: dict) -> None:
    report = validate(_batch(train).drop(columns=["sex"]), contract)
    match = _failed(report, "expect_table_columns_to_match_set", None)[0]
    assert match.observed["missing"] == ["sex"]
    assert _failed(report, "expect_column_values_to_be_of_type", "sex")[0].observed == "column missing"
    assert "missing ['sex']" in report.summary()


def test_extra_column_fails(train: pd.DataFrame, contract: dict) -> None:
    report = validate(_batch(train).assign(cabin="C85"), contract)
    assert _failed(report, "expect_table_columns_to_match_set", None)[0].observed["unexpected"] == ["cabin"]


def test_text_in_numeric_column_fails(train: pd.DataFrame, contract: dict) -> None:
    batch = _batch(train)
    batch["age"] = batch["age"].astype(object)
    batch.loc[20, "age"] = "abc"
    failure = _failed(validate(batch, contract), "expect_column_values_to_be_in_type_list", "age")[0]
    assert failure.unexpected_examples == ["abc"]


def test_out_of_range_value_fails(train: pd.DataFrame, contract: dict) -> None:
    batch = _batch(train)
    batch.loc[20, "age"] = 250.0
    report = validate(batch, contract)
    failure = _failed(report, "expect_column_values_to_be_between", "age", "warning")[0]
    assert failure.unexpected_examples == [250.0] and failure.check == "ranges"
    assert "expect_column_values_to_be_between(age)" in report.summary()


def test_infinity_fails(train: pd.DataFrame, contract: dict) -> None:
    batch = _batch(train).astype({"fare": "float64"})
    batch.loc[20, "fare"] = np.inf
    report = validate(batch, contract)
    failure = _failed(report, "expect_column_values_to_be_between", "fare", check="finite")[0]
    assert failure.unexpected_examples == ["inf"]


def test_all_null_column_fails(train: pd.DataFrame, contract: dict) -> None:
    batch = _batch(train)
    batch["sex"] = pd.Series([None] * len(batch), dtype=object, index=batch.index)
    _failed(validate(batch, contract), "expect_column_values_to_not_be_null", "sex")


def test_new_category_levels_beyond_allowance_fail(train: pd.DataFrame, contract: dict) -> None:
    batch = _batch(train)
    batch["sex"] = batch["sex"].astype(object)
    batch.loc[:1, "sex"] = "unknown"  # 2 of 60 rows: within the 5% allowance
    assert validate(batch, contract).success
    batch.loc[:11, "sex"] = "unknown"  # 20%: beyond it
    failure = _failed(validate(batch, contract), "expect_column_values_to_be_in_set", "sex", "warning")[0]
    assert failure.unexpected_examples[0] == "unknown" and failure.observed == pytest.approx(20.0)


def test_prediction_input_needs_no_target(train: pd.DataFrame, contract: dict) -> None:
    assert validate(_batch(train).drop(columns=[TARGET]), contract, require_target=False).success
    report = validate(_batch(train).drop(columns=[TARGET]), contract)
    _failed(report, "expect_table_columns_to_match_set", None)


def test_docs_dir_builds_data_docs(train: pd.DataFrame, contract: dict, tmp_path: Path) -> None:
    report = validate(_batch(train), contract, docs_dir=tmp_path / "docs")
    assert report.success
    assert report.docs_index == str((tmp_path / "docs" / "index.html").resolve())
    assert Path(report.docs_index).is_file()


def test_an_empty_batch_breaks_the_row_count(train: pd.DataFrame, contract: dict) -> None:
    _failed(validate(train.iloc[:0], contract), "expect_table_row_count_to_be_between", None)


def test_a_repeated_id_is_a_warning(train: pd.DataFrame, contract: dict) -> None:
    batch = _batch(train)
    batch.loc[5, "ticket"] = batch.loc[4, "ticket"]
    _failed(validate(batch, contract), "expect_column_values_to_be_unique", "ticket", "warning")


def test_severities_come_from_the_config(train: pd.DataFrame) -> None:
    strict = ValidateConfig.model_validate({"severity": {"ranges": "error"}})
    batch = _batch(train)
    batch.loc[20, "age"] = 250.0
    _failed(validate(batch, build_contract(train, TARGET, strict)), "expect_column_values_to_be_between", "age")


def test_user_expectations_join_the_contract_with_their_severity(train: pd.DataFrame) -> None:
    cfg = ValidateConfig.model_validate({"expectations": [
        {"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "fare", "max_value": 300}},
        {"expectation": "expect_column_values_to_match_regex", "kwargs": {"column": "sex", "regex": "^f"},
         "severity": "warning"},
    ]})
    rules = build_contract(train, TARGET, cfg)
    report = validate(_batch(train), rules)
    user = [f for f in report.failures if f.check == "user"]
    assert {(f.expectation, f.column, f.severity) for f in user} == {
        ("expect_column_values_to_be_between", "fare", "error"),
        ("expect_column_values_to_match_regex", "sex", "warning")}
    assert not report.success
    assert all(v > 300 for v in user[0].unexpected_examples if user[0].column == "fare")


@pytest.mark.parametrize(("rule", "message"), [
    ({"expectation": "expect_column_to_be_lovely", "kwargs": {"column": "age"}}, "no such Great Expectations"),
    ({"expectation": "expect_column_values_to_be_between", "kwargs": {"colum": "age"}}, "invalid arguments"),
])
def test_a_bad_user_expectation_is_named(train: pd.DataFrame, rule: dict, message: str) -> None:
    with pytest.raises(UserError, match=rf"validate.expectations\[0\] \({rule['expectation']}\): {message}"):
        build_contract(train, TARGET, ValidateConfig.model_validate({"expectations": [rule]}))
