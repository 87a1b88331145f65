"""A model pickled by tabpilot 0.2, whose modules were one flat package, loads and predicts as it did
after the move into subpackages (tabpilot/old_paths.py). tests/data/v0_2/ was written by 0.2's code
(commit 90da141) with tests/data/v0_2/make.py."""
import pickle
import pickletools
from pathlib import Path

import numpy as np
import pandas as pd

from tabpilot.core.artifacts import load_pickle
from tabpilot.ensemble.model import EnsembleModel

DATA = Path(__file__).parents[1] / "data" / "v0_2"


def _modules(blob: bytes) -> set[str]:
    """The modules a pickle names for its classes."""
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(blob):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            found.add(strings[-2])
        elif op.name == "GLOBAL":
            found.add(arg.split(" ")[0])
    return {m for m in found if m.startswith("tabpilot")}


def test_the_fixture_names_the_old_flat_modules() -> None:
    # What makes the next test mean something: the pickle asks for modules that no longer exist as such.
    named = _modules((DATA / "ensemble.pkl").read_bytes())
    assert "tabpilot.ensemble" in named
    assert any(m.count(".") == 1 and m.split(".")[1] in ("fast_preprocess", "preprocessing", "features")
               for m in named), named


def test_a_model_pickled_by_0_2_loads_and_predicts_as_it_did() -> None:
    model = load_pickle(DATA / "ensemble.pkl")
    assert isinstance(model, EnsembleModel)
    rows = pd.read_parquet(DATA / "rows.parquet")
    np.testing.assert_allclose(model.predict_proba(rows), np.load(DATA / "proba.npy"), rtol=0, atol=1e-9)


def test_the_served_class_pickled_by_reference_resolves_to_its_new_module() -> None:
    served = pickle.loads((DATA / "pyfunc.pkl").read_bytes())
    assert type(served).__module__ == "tabpilot.registry.tracking"


def test_new_pickles_name_only_the_new_modules() -> None:
    model = load_pickle(DATA / "ensemble.pkl")
    named = _modules(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    old = {f"tabpilot.{m}" for m in ("ensemble", "fast_preprocess", "preprocessing", "features", "compiled",
                                      "fast_models", "native_categorical", "io")}
    assert named and not named & old, named
