from pathlib import Path

import pytest
from pydantic import ValidationError

from tabpilot.core import config
from tabpilot.core.errors import UserError
from tests.helpers import REPO


def test_repo_params_file_parses_into_typed_sections() -> None:
    cfg = config.load(REPO / "params.yaml")
    assert cfg.search.time_budget == 60
    assert cfg.register_.name == "titanic"
    assert cfg.validate_.fail_on_error is True


def test_unknown_key_is_one_line_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("search:\n  time_budgett: 5\n")
    with pytest.raises(UserError, match=r"search\.time_budgett"):
        config.load(path)


def test_bad_value_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("split:\n  test_size: 2\n")
    with pytest.raises(UserError, match=r"split\.test_size"):
        config.load(path)


def test_overrides_revalidate_and_ignore_none() -> None:
    cfg = config.load(None).with_overrides({"search.time_budget": 5, "seed": None, "register.name": "m1"})
    assert cfg.search.time_budget == 5 and cfg.seed == 42 and cfg.register_.name == "m1"
    with pytest.raises(UserError, match="search.time_budget"):
        cfg.with_overrides({"search.time_budget": 0})


def test_unknown_family_rejected() -> None:
    with pytest.raises(UserError, match="families"):
        config.parse({"search": {"families": ["xgboost", "tabnet"]}})


def test_config_is_frozen() -> None:
    cfg = config.load(None)
    with pytest.raises(ValidationError):
        cfg.seed = 1  # type: ignore[misc]


def test_lightgbm_and_catboost_are_searched_by_default_and_the_neural_families_only_when_asked() -> None:
    assert {"lightgbm", "catboost"} <= set(config.parse({}).search.families)
    assert not {"torch_mlp", "torch_darts"} & set(config.parse({}).search.families)
    asked = config.parse({"search": {"families": ["lightgbm", "torch_mlp"]}})
    assert asked.search.families == ("lightgbm", "torch_mlp")


def test_large_tables_hold_out_at_most_max_test_rows() -> None:
    split = config.SplitConfig(test_size=0.25, max_test_rows=50_000)
    assert split.test_rows(1_000) == 250  # small tables: test_size of them
    assert split.test_rows(1_000_000) == 50_000  # the other 200,000 train
    assert config.SplitConfig(max_test_rows=None).test_rows(1_000_000) == 250_000
    # From the training split's size back to the test split's share of all rows, as the budget needs it.
    assert split.share_of_train(750) == 0.25
    assert split.share_of_train(950_000) == pytest.approx(50_000 / 1_000_000)
