"""The end-of-run summary printed by `tabpilot train`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

STAGE_ORDER = ("ingest", "validate", "split", "preprocess", "features", "search", "ensemble", "register")


def print_summary(records: dict[str, Any], run_dir: Path, tracking_uri: str, seconds: float) -> None:
    console = Console()
    search, ens, reg = records["search"], records["ensemble"], records["register"]
    table = Table(title=f"tabpilot: {reg['name']} v{reg['version']} @{reg['alias']}", show_header=False)
    table.add_row("trials", f"{search['trials']} ({search['ok']} ok, {search['pruned']} pruned after one fold, "
                            f"{search['stopped'] + search['timeout']} stopped, {search['failed']} failed)")
    table.add_row("best trial", f"#{search['best_trial']} {search['best_family']}: "
                                f"CV {search['metric']} {search['best_cv_score']:.4f}")
    metrics = _metrics(run_dir)
    used = metrics.get("fold_models_used", {})
    members = ", ".join(f"#{m['trial']} {m['family']} x{m['weight']:.2f}"
                        + (f" ({used[str(m['trial'])]} models)" if used.get(str(m["trial"]), 1) > 1 else "")
                        for m in metrics["members"])
    table.add_row(f"ensemble ({ens['method']})", members)
    cost = metrics.get("predict_cost")
    if cost:
        limit = cost["limit"]
        table.add_row("predict time", f"one row {cost['measured']['one_row_ms']:.2f} ms, 1,000 rows "
                      f"{cost['measured']['rows_1000_ms']:.1f} ms (limits {_ms(limit['one_row_ms'])} and "
                      f"{_ms(limit['rows_1000_ms'])}: ensemble.max_predict_ms, ensemble.max_batch_ms)")
        if "mb" in cost["measured"]:
            table.add_row("model size", f"{cost['measured']['mb']:.2f} MB (limit {_mb(limit.get('mb'))}: "
                          "ensemble.max_model_mb)")
    front = search.get("pareto_front")
    if front:
        table.add_row("pareto front", f"{len(front)} trials of score, latency and size: "
                      + ", ".join(f"#{t['trial']} {t['family']} {t['score']:.4f}, {t['latency_ms']:.3f} ms/row, "
                                  f"{t['mb']:.2f} MB" for t in front[:4]) + (" ..." if len(front) > 4 else "")
                      + " (reports/pareto.json, plots/pareto.png)")
    table.add_row("ensemble CV", f"{ens['ensemble_cv_score']:.4f}")
    table.add_row("test score", f"{ens['metric']} {ens['test_score']:.4f} on {ens['test_rows']} held-out rows")
    champion = reg["champion_score"]
    table.add_row("gate", reg["gate"] + (f" (champion {champion:.4f})" if champion is not None else ""))
    table.add_row("registered", f"{reg['model_uri']} (version {reg['version']})")
    stages = [f"{name} {records[name]['seconds']:.1f}" for name in STAGE_ORDER if "seconds" in records.get(name, {})]
    table.add_row("wall time", f"{seconds:.1f} s (" + ", ".join(stages) + ")")
    console.print(table)
    store = tracking_uri if "://" in tracking_uri else f"sqlite:///{tracking_uri}"
    console.print(f"MLflow UI:  mlflow ui --backend-store-uri {store}")
    console.print(f"Report:     {run_dir / 'reports' / 'metrics.json'}")
    console.print(f"Predict:    tabpilot predict --model {reg['model_uri']} --input FILE --output OUT.csv")


def _ms(limit: float | None) -> str:
    return "none" if limit is None else f"{limit:g} ms"


def _mb(limit: float | None) -> str:
    return "none" if limit is None else f"{limit:g} MB"


def _metrics(run_dir: Path) -> dict[str, Any]:
    import json

    return json.loads((run_dir / "reports" / "metrics.json").read_text())
