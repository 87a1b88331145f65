"""Writes this folder with tabpilot 0.2 (commit 90da141, before the subpackages): a small fitted
ensemble and the served pyfunc, pickled as 0.2 pickled them. Run from a checkout of that commit:
`python tests/data/v0_2/make.py tests/data/v0_2`."""
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tabpilot.artifacts import save_pickle

from tabpilot import AutoML, tracking


def main(out: Path) -> None:
    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.integers(0, 5, n).astype(float),
                      "colour": rng.choice(["red", "green", "blue"], n), "note": rng.choice(["a b", "b c d", "e"], n)})
    X.loc[::17, "x1"] = np.nan
    signal = X.x1.fillna(0) + (X.colour == "red") + rng.normal(0, 0.5, n)
    y = pd.Series(np.where(signal > 0.5, "yes", "no"), name="label")
    model = AutoML(time_budget=20, max_trials=3, seed=0, name="v02_fixture", workdir=out / "work",
                   search__families=["linear", "hist_gb"], ensemble__refit_full=False).fit(X, y)
    save_pickle(model.ensemble_, out / "ensemble.pkl")
    rows = X.head(40)
    rows.to_parquet(out / "rows.parquet")
    np.save(out / "proba.npy", model.ensemble_.predict_proba(rows))
    (out / "pyfunc.pkl").write_bytes(pickle.dumps(tracking.TabpilotPyfunc()))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
