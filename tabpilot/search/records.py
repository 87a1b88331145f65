"""A search's trials as records: what each trial did, the predictions the ensemble needs, and
which trials the ensemble is offered."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tabpilot.search.pareto import alone
from tabpilot.search.workers import Outcome


@dataclass
class TrialRecord:
    trial: int
    family: str
    params: dict[str, Any]
    status: str
    score: float | None
    loss: float | None
    fit_time: float
    started: float
    finished: float
    error: str | None = None
    fold_scores: list[float] = field(default_factory=list)

    first_fold_loss: float | None = None
    models_kept: bool = False
    features: dict[str, Any] | None = None  # feature settings, None for the plain pipeline
    decided: dict[str, list[str]] | None = None  # what its fold models chose by those settings: refits keep it
    repeats: int = 1  # k-folds run (its bag holds their models)
    late: int = 0  # late repeats: when > 0, its score and predictions are those of these alone
    began: float | None = None  # when a worker began it (`started`: when it was sent); None if it never did
    predict_time: float = 0.0  # seconds its fold models spent predicting their validation rows
    predict_cost: dict[str, Any] | None = None  # one fold model's estimated costs (tabpilot.search.predict_cost)
    latency_ms: float | None = None  # ms per row: `predict_time` over the validation rows it predicted
    model_mb: float | None = None  # one fold model, its preprocessing included, pickled
    over_limit: bool = False  # its one model alone breaks the ensemble's limits (told as a failure: pareto)
    rung: int = 0  # the highest rung of rows it was fitted at (tabpilot.search.fidelity): its score's
    rows: int | None = None  # training rows its score's model was fitted on, if fewer than all (a lower rung)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class SearchResult:
    records: list[TrialRecord]
    oof: dict[int, np.ndarray]

    def ranked(self) -> list[TrialRecord]:
        ok = [r for r in self.records if r.status == "ok" and r.loss is not None]
        return sorted(ok, key=lambda r: (r.loss, r.trial))

    def held(self) -> list[TrialRecord]:
        """The ranked trials whose out-of-fold predictions are still held. Late repeats re-rank
        trials, so one whose predictions were dropped can climb back among the best without them."""
        return [r for r in self.ranked() if r.trial in self.oof]

    def candidates(self, top: int) -> list[TrialRecord]:
        """The ensemble's candidates, best first, among the held trials: see `ensemble_candidates`."""
        ranked = self.held()
        chosen = set(ensemble_candidates([(r.trial, r.family, float(r.loss)) for r in ranked if r.loss is not None],
                                         top))
        return [r for r in ranked if r.trial in chosen]


def ensemble_candidates(ranked: list[tuple[int, str, float]], top: int) -> list[int]:
    """The trials offered to the ensemble, best first, from (trial, family, loss) triples best first:
    the `top` best and each family's best (`best_of_each_family`)."""
    chosen = {t for t, _, _ in ranked[:top]} | set(best_of_each_family(ranked))
    return [t for t, _, _ in ranked if t in chosen]


def best_of_each_family(trials: list[tuple[int, str, float]]) -> list[int]:
    """The best trial of every family, by (loss, trial id), from (trial, family, loss) triples.

    The ensemble is offered these beside the overall best: a long search piles its best scores on
    one family (credit_data at 300 s: the 12 best trials were all MLPs), and a blend of one family
    is worse than the diverse one a short search had to offer (CV AUC 0.8464 against 0.8495 at 60 s).
    """
    best: dict[str, tuple[float, int]] = {}
    for trial, family, loss in trials:
        if family not in best or (loss, trial) < best[family]:
            best[family] = (loss, trial)
    return sorted(t for _, t in best.values())


def trial_record(outcome: Outcome, candidate: dict[str, Any], started: float) -> TrialRecord:
    res = outcome.result or {}
    status = res.get("status", "timeout" if outcome.timed_out else "failed")
    return TrialRecord(
        trial=int(outcome.job_id), family=candidate["family"], params=candidate["params"],
        features=candidate.get("features"), decided=res.get("decided"),
        status=status, score=res.get("score"), loss=res.get("loss"),
        fit_time=float(res.get("fit_time", outcome.elapsed)), started=started, finished=time.time(),
        error=outcome.error or res.get("reason"), fold_scores=list(res.get("fold_scores", [])),
        first_fold_loss=res.get("first_fold_loss"), models_kept=bool(res.get("models_kept")), began=res.get("began"),
        predict_time=float(res.get("predict_time", 0.0)), predict_cost=res.get("predict_cost"),
        latency_ms=1000.0 * res["predict_time"] / res["predict_rows"] if res.get("predict_rows") else None,
        model_mb=alone(res["predict_cost"]).mb if res.get("predict_cost") else None, rows=res.get("rows"),
    )


def candidate_of(record: TrialRecord) -> dict[str, Any]:
    features = {"features": record.features} if record.features else {}
    return {"family": record.family, "params": record.params, **features}


def merge_repeat(result: SearchResult, outcome: Outcome, repeating: set[int], done: set[int]) -> None:
    """Fold a late repeat's predictions and score into its trial's record (the first replaces the
    search's: see LATE_REPEATS)."""
    trial = outcome.job_id[1]
    repeating.discard(trial)
    res = outcome.result or {}
    record = next(r for r in result.records if r.trial == trial)
    if res.get("status") != "ok" or trial not in result.oof:
        done.add(trial)  # it cannot finish in the time left: give the workers to others
        return
    result.oof[trial] = res["oof"]
    record.score, record.loss, record.repeats = res["score"], res["loss"], record.repeats + 1
    record.late += 1
    record.fold_scores = record.fold_scores + list(res["fold_scores"])
    record.fit_time += float(res["fit_time"])
    record.predict_time += float(res.get("predict_time", 0.0))
    record.models_kept = bool(res.get("models_kept"))


def keep_best_oof(result: SearchResult, keep: int, models_dir: Path | None) -> None:
    """Hold the out-of-fold predictions (and fold models) of the ensemble's candidates only (the
    best `keep` trials and each family's best): memory and disk stay bounded."""
    if len(result.oof) <= keep:
        return
    best = {r.trial for r in result.candidates(keep)}
    for trial in [t for t in result.oof if t not in best]:
        del result.oof[trial]
        if models_dir is not None:
            (models_dir / f"trial_{trial}.pkl").unlink(missing_ok=True)
