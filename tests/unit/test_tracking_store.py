"""The local SQLite tracking store appears whole or not at all: a command killed while MLflow
created its tables used to leave a database no later command could open."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.store.tracking import sqlalchemy_store
from mlflow.tracking import MlflowClient

from tabpilot.registry.tracking import create_sqlite_store


def test_a_store_killed_while_created_is_made_again_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    real = sqlalchemy_store.SqlAlchemyStore

    def killed(part_uri: str, root: str) -> None:
        Path(part_uri[len("sqlite:///"):]).write_bytes(b"SQLite format 3\x00 half the tables")
        raise KeyboardInterrupt  # as the kill would stop it, midway

    monkeypatch.setattr(sqlalchemy_store, "SqlAlchemyStore", killed)
    with pytest.raises(KeyboardInterrupt):
        create_sqlite_store(uri)
    assert list(tmp_path.iterdir()) == []  # nothing half made is left where the store belongs
    monkeypatch.setattr(sqlalchemy_store, "SqlAlchemyStore", real)
    create_sqlite_store(uri)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".db"] == ["mlflow.db"]
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("e")).info.run_id
    create_sqlite_store(uri)  # a store that exists is left as it is
    assert client.get_run(run).info.status == "RUNNING"
