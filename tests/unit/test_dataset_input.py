"""The data a run learned from, logged to MLflow as a dataset input: its size counted on every row,
its column types and digest read from the first rows (MLflow reads every value otherwise)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from tabpilot.core.config import TrackingConfig
from tabpilot.registry import tracking


def _logged(uri: str, run_id: str) -> list:
    return MlflowClient(tracking_uri=uri).get_run(run_id).inputs.dataset_inputs


def test_a_large_split_is_logged_with_every_row_counted_and_its_columns_typed(tmp_path: Path) -> None:
    uri = tracking.configure(TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlflow.db'}"), tmp_path)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=25_000), "colour": rng.choice(["red", "blue"], 25_000),
                          "y": rng.integers(0, 2, 25_000)})
    run_id = tracking.start_run("datasets", "run", {})
    longer = pd.concat([frame, frame.tail(10)], ignore_index=True)  # the same first rows, more of them
    for name, table in (("demo-training", frame), ("demo-longer", longer)):
        table.to_parquet(tmp_path / f"{name}.parquet", row_group_size=4_000)  # several row groups
        tracking.log_dataset(run_id, tmp_path / f"{name}.parquet", "train.csv", name, "y", "training")
    logged = {i.dataset.name: i for i in _logged(uri, run_id)}
    first = logged["demo-training"]
    assert json.loads(first.dataset.profile) == {"num_rows": 25_000, "num_elements": 75_000}
    types = {c["name"]: c["type"] for c in json.loads(first.dataset.schema)["mlflow_colspec"]}
    assert types == {"x": "double", "colour": "string", "y": "long"}
    assert {t.key: t.value for t in first.tags} == {"mlflow.data.context": "training",
                                                    "tabpilot.data_source": "train.csv"}
    assert logged["demo-longer"].dataset.digest != first.dataset.digest
