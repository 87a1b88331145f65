"""The Pareto front of a search's trials (`search.objective: pareto`): no other trial is at least as
good on all three objectives and better on one. The objectives, all lower-is-better: the CV loss,
the prediction latency per row (measured: the fold models' time on their validation rows, divided
by those rows) and the model's size (one fold model, its preprocessing included, pickled)."""
from __future__ import annotations

from typing import Any

from tabpilot.search.predict_cost import Cost


def alone(described: dict[str, Any]) -> Cost:
    """A trial's one model, preprocessing included, from its recorded costs."""
    return Cost(*described["model"]) + Cost(*described["preprocess"])


def objectives(record: dict[str, Any]) -> tuple[float, float, float] | None:
    """(loss, ms per row, MB) of a finished trial; None for one without all three."""
    values = (record.get("loss"), record.get("latency_ms"), record.get("model_mb"))
    if record.get("status") != "ok" or any(v is None for v in values):
        return None
    return tuple(float(v) for v in values)  # type: ignore[return-value]


def front(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trials on the front, best loss first, each with its objectives."""
    points = {r["trial"]: (r, p) for r in records if (p := objectives(r)) is not None}

    def dominated(p: tuple[float, ...]) -> bool:
        return any(all(a <= b for a, b in zip(q, p, strict=True)) and q != p for _, q in points.values())

    kept = sorted(((r, p) for r, p in points.values() if not dominated(p)), key=lambda rp: (rp[1], rp[0]["trial"]))
    return [{"trial": r["trial"], "family": r["family"], "score": r["score"], "loss": p[0],
             "latency_ms": round(p[1], 5), "mb": round(p[2], 4), "over_limit": bool(r.get("over_limit"))}
            for r, p in kept]
