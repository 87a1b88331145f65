"""The families' hyperparameter spaces and defaults as the search reads them, derived from their
declarations (tabpilot.families), with the functions that resolve and clip configurations.

The hyperopt adapter (`tabpilot.search.hpo`) turns the spaces into hyperopt expressions labelled
`family.param`; nothing here depends on hyperopt.
"""
from __future__ import annotations

from typing import Any

from tabpilot.families import REGISTRY, Dim, Scaled

__all__ = ["ADDED_LATER", "COST_ORDER", "DEFAULTS", "EXTRA_DEFAULTS", "MAX_ROWS", "SPACES", "Dim", "Scaled"]

SPACES: dict[str, dict[str, Dim]] = {name: f.space for name, f in REGISTRY.items()}
DEFAULTS: dict[str, dict[str, Any]] = {name: f.default for name, f in REGISTRY.items()}
EXTRA_DEFAULTS: dict[str, list[dict[str, Any]]] = {name: list(f.extra_defaults) for name, f in REGISTRY.items()
                                                   if f.extra_defaults}
ADDED_LATER: dict[str, dict[str, Any]] = {name: f.added_later for name, f in REGISTRY.items() if f.added_later}
COST_ORDER = tuple(sorted(REGISTRY, key=lambda name: REGISTRY[name].cost_rank))
MAX_ROWS = {name: f.max_rows for name, f in REGISTRY.items() if f.max_rows is not None}


def applicable(families: tuple[str, ...], rows: int, from_rows: dict[str, int] | None = None) -> tuple[str, ...]:
    """The enabled families worth searching on a training set of `rows` rows, with those of `from_rows`
    ({family: rows}, `search.families_from_rows`) that it has enough rows for."""
    joining = tuple(f for f, least in (from_rows or {}).items() if rows >= least and f not in families)
    return tuple(f for f in (*families, *joining) if rows <= MAX_ROWS.get(f, rows))


def space_for(family: str, rows: int) -> dict[str, Dim]:
    """A family's space with its `Scaled` bounds resolved for `rows` training rows."""
    return {name: tuple(b.at(rows) if isinstance(b, Scaled) else b for b in dim)
            for name, dim in SPACES[family].items()}


def fits_space(config: dict[str, Any]) -> bool:
    """Whether a stored configuration (portfolio, warm start) names a known family and valid choices."""
    space = SPACES.get(config.get("family", ""))
    if space is None:
        return False
    params = {**ADDED_LATER.get(config["family"], {}), **config.get("params", {})}
    if set(params) != set(space):
        return False
    return all(params[n] in d[1] for n, d in space.items() if d[0] == "choice")


def clip_to_space(family: str, params: dict[str, Any], rows: int) -> dict[str, Any]:
    """Move a configuration's numeric values inside the space for `rows` rows (defaults, warm starts)."""
    space = space_for(family, rows)
    out = {**ADDED_LATER.get(family, {}), **params}
    for name, dim in space.items():
        if dim[0] != "choice" and out.get(name) is not None:
            out[name] = min(max(out[name], dim[1]), dim[2])
    return cast(family, out)  # a `Scaled` bound is a float: an integer parameter clipped to it is not


def cast(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """Give sampled values the types their estimators expect (hyperopt returns floats for ints)."""
    out = {}
    for name, value in params.items():
        kind = SPACES[family][name][0]
        out[name] = int(round(value)) if kind in ("int", "logint") and value is not None else value
    return out


def defaults_in_order(families: tuple[str, ...], rows: int) -> list[dict[str, Any]]:
    """The default configurations of every enabled family, cheapest family first."""
    return [{"family": f, "params": clip_to_space(f, params, rows)}
            for f in COST_ORDER if f in families for params in [DEFAULTS[f], *EXTRA_DEFAULTS.get(f, [])]]
