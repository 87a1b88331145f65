import numpy as np
import pytest
import yaml

from tabpilot.core.config import PreprocessConfig
from tabpilot.data.files import normalise
from tabpilot.data.preprocessing import plan_preprocessing
from tabpilot.search import metafeatures, portfolio
from tabpilot.search.spaces import fits_space
from tests.helpers import REPO, make_frame

BENCHMARK_PACKAGES = {"modeldata", "AER", "openintro", "dslabs", "carData", "ISLR", "ggplot2", "vega_datasets"}


def _entry(name: str, task: str, rows: float, family: str) -> dict:
    meta = dict.fromkeys(metafeatures.NAMES, 0.0) | {"log_rows": rows}
    configs = [{"family": family, "params": {"rank": 1}}, {"family": "linear", "params": {"rank": 2}}]
    return {"dataset": name, "task": task, "meta": meta, "configs": configs}


def test_warm_start_takes_the_nearest_tables_of_the_same_kind() -> None:
    entries = [_entry("small", "binary", 2.0, "knn"), _entry("big", "binary", 5.0, "xgboost"),
               _entry("reg", "regression", 2.0, "svm"), _entry("mid", "multiclass", 3.0, "hist_gb")]
    meta = dict.fromkeys(metafeatures.NAMES, 0.0) | {"log_rows": 2.1}
    chosen = portfolio.warm_start(meta, "binary", ("knn", "hist_gb", "linear", "xgboost", "svm"), n_datasets=2,
                                  entries=entries, first=[])
    # best of the two nearest classification tables first, then their runners-up, without repeats
    assert [c["family"] for c in chosen] == ["knn", "hist_gb", "linear"]
    only_trees = portfolio.warm_start(meta, "binary", ("xgboost",), n_datasets=3, entries=entries, first=[])
    assert [c["family"] for c in only_trees] == ["xgboost"]


def test_meta_features_describe_the_table() -> None:
    frame = normalise(make_frame(300, "multiclass"))
    y = np.unique(frame.pop("y"), return_inverse=True)[1]
    meta = metafeatures.compute(frame, y, "multiclass", plan_preprocessing(frame, PreprocessConfig()))
    assert set(meta) == set(metafeatures.NAMES)
    assert meta["log_rows"] == pytest.approx(np.log10(300)) and meta["share_categorical"] == pytest.approx(1 / 3)
    assert meta["log_classes"] == pytest.approx(np.log2(3)) and 0 < meta["share_missing"] < 0.1


@pytest.mark.parametrize("statistics", [True, False])
def test_meta_features_of_a_parquet_split_are_those_of_its_values(tmp_path, statistics: bool) -> None:
    frame = normalise(make_frame(300, "multiclass"))
    path = tmp_path / "train.parquet"
    frame.to_parquet(path, row_group_size=100, write_statistics=statistics)  # three row groups' counts
    y = np.unique(frame.pop("y"), return_inverse=True)[1]
    plan = plan_preprocessing(frame, PreprocessConfig())
    expected = metafeatures.compute(frame, y, "multiclass", plan)
    assert 0 < expected["share_missing"]  # the null counts are read, not assumed away
    assert metafeatures.of_file(path, "y", y, "multiclass", plan) == pytest.approx(expected)


def test_meta_learning_never_sees_the_benchmark_tables() -> None:
    datasets = yaml.safe_load((REPO / "tabpilot" / "meta" / "datasets.yaml").read_text())
    assert datasets and not {d["package"] for d in datasets} & BENCHMARK_PACKAGES
    assert "titanic" not in {d["item"].lower() for d in datasets}
    for entry in portfolio.load():
        assert entry["dataset"].split("/")[0] not in BENCHMARK_PACKAGES
        assert entry["configs"] and all(fits_space(c) for c in entry["configs"])
