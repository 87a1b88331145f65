"""Every path a stage reads or writes, defined once. Stages hand each other files at these paths."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunPaths:
    """The layout of one run's working directory (the repo root under DVC, runs/NAME for train)."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw" / "data.parquet"

    @property
    def schema(self) -> Path:
        return self.root / "data" / "raw" / "schema.json"

    @property
    def contract(self) -> Path:
        return self.root / "artifacts" / "contract.json"

    @property
    def validation_report(self) -> Path:
        return self.root / "reports" / "validation.json"

    @property
    def data_docs(self) -> Path:
        return self.root / "reports" / "data_docs"

    @property
    def train(self) -> Path:
        return self.root / "data" / "prepared" / "train.parquet"

    @property
    def test(self) -> Path:
        return self.root / "data" / "prepared" / "test.parquet"

    @property
    def preprocess_plan(self) -> Path:
        return self.root / "artifacts" / "preprocess.json"

    @property
    def features_plan(self) -> Path:
        return self.root / "artifacts" / "features.json"

    @property
    def search_dir(self) -> Path:
        return self.root / "artifacts" / "search"

    @property
    def trials(self) -> Path:
        return self.search_dir / "trials.json"

    @property
    def leaderboard(self) -> Path:
        return self.search_dir / "leaderboard.csv"

    @property
    def oof(self) -> Path:
        return self.search_dir / "oof.npz"

    @property
    def ensemble(self) -> Path:
        return self.root / "artifacts" / "ensemble.joblib"

    @property
    def model_dir(self) -> Path:
        return self.root / "artifacts" / "model"

    @property
    def metrics(self) -> Path:
        return self.root / "reports" / "metrics.json"

    @property
    def registration(self) -> Path:
        return self.root / "reports" / "registration.json"

    @property
    def run_info(self) -> Path:
        """The MLflow parent run id and timing shared by the stages of one pipeline run."""
        return self.search_dir / "run.json"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
