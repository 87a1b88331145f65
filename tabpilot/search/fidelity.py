"""Multi-fidelity over rows for large tables: asynchronous successive halving (ASHA, Li et al. 2018).

Where the search evaluates on a holdout and its training rows number at least ETA x FIRST_ROWS, a new
configuration is fitted on FIRST_ROWS of them first; each rung up fits ETA times the rows, the last on
all of them. A trial moves up a rung once it is among the best 1/ETA of the trials finished at its
rung and its fit there can end before the search does. Every rung predicts the same validation rows,
so scores and predictions compare across rungs, and the ensemble chooses among them as among any
trials; a trial keeps its latest rung's model, which serves when its refit on all rows would not end
in time. The strategy learns from the first rung's losses only (all configurations have one).

A trial's fit time grows with its rows (ROWS_EXPONENT, as tabpilot.training.budget counts refits): a
1,000,000-row table at 300 s with two workers leaves time for a few fits on all rows and dozens of
first-rung fits (results/scale_*.md).
"""
from __future__ import annotations

FIRST_ROWS = 25_000
ETA = 4
ROWS_EXPONENT = 1.2


def rungs(pool: int) -> list[int]:
    """Training rows per rung for `pool` training rows: FIRST_ROWS, then x ETA, then all of them (a
    last step under 2x is merged into it); one rung of all rows on smaller tables."""
    if pool < ETA * FIRST_ROWS:
        return [pool]
    sizes = [FIRST_ROWS]
    while sizes[-1] * ETA < pool:
        sizes.append(sizes[-1] * ETA)
    if pool < 2 * sizes[-1]:
        sizes[-1] = pool
    else:
        sizes.append(pool)
    return sizes


def promotable(finished: dict[int, float], promoted: set[int], first: bool = True) -> list[int]:
    """Of the trials finished at one rung ({trial: loss}), those among its best 1/ETA that have not
    moved up yet, best first (ties by trial id). Above the `first` rung the share is rounded up once
    two have finished: those rungs hold survivors already chosen one in ETA, and waiting for ETA of
    them would leave all rows out of most budgets' reach (64 first-rung trials for 4 rungs)."""
    n = len(finished)
    share = n // ETA if first else -(-n // ETA) if n >= 2 else 0
    ranked = sorted(finished, key=lambda t: (finished[t], t))[:share]
    return [t for t in ranked if t not in promoted]


def scaled_seconds(seconds: float, rows: int, to_rows: int) -> float:
    """A fit's seconds on `rows` rows, estimated on `to_rows`."""
    return seconds * (to_rows / max(rows, 1)) ** ROWS_EXPONENT
