"""Algorithm selection and hyperparameter optimisation over whole pipelines.

The cheapest family's default goes first, then the given configurations (a retrain's champion
members), the portfolio's and the other defaults (cheapest first), then the strategy
(`search.strategy`, TPE by default) proposes; on rungs of rows the defaults go before the portfolio.
Trials run in a worker pool; this process alone asks, tells and reports each finished trial through
`on_trial` (the caller logs it to MLflow). With `max_trials` set the search runs in synchronous
rounds, so the same seed gives the same trials whatever the machine's speed.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tabpilot.core.config import SearchConfig
from tabpilot.search import fidelity
from tabpilot.search.evaluate import cross_validate, holdout_share
from tabpilot.search.journal import Entry, Extra, Journal, Resumed
from tabpilot.search.pareto import alone
from tabpilot.search.predict_cost import Cost
from tabpilot.search.records import (
    SearchResult,
    TrialRecord,
    candidate_of,
    keep_best_oof,
    merge_repeat,
    trial_record,
)
from tabpilot.search.spaces import applicable, clip_to_space, defaults_in_order, fits_space
from tabpilot.search.strategy import make_strategy
from tabpilot.search.workers import Outcome, Pool

# Pruning starts once this many trials have a first-fold score to compare with.
MIN_TRIALS_TO_PRUNE = 6
# Late repeats: past LATE_SHARE of the search window, idle workers first run the k-fold of the
# LATE_TOP best trials again on new shuffles (LATE_REPEATS each), and only then try new
# configurations. A repeated trial is then scored on its new shuffles only: hundreds of trials
# tuned against the same folds pick that split's luck (titanic at 300 s: the 8 best trials, all
# MLPs, lost 0.006 to 0.011 AUC on new shuffles; the other families' best held or gained), so
# the best trials are re-checked on folds no trial was chosen by, and lucky ones fall back while
# the next ones take their turn. Their bags keep every fold model. Windows shorter than
# LATE_MIN_SECONDS (a 60 s budget) have not settled and keep searching to the end. LATE_TOP is
# the ensemble's default offer (ensemble.top_k), whose predictions Caruana weighs.
LATE_SHARE, LATE_MIN_SECONDS = 0.6, 90.0
LATE_TOP, LATE_REPEATS = 12, 2


def run_search(pool: Pool, cfg: SearchConfig, seed: int, end: float, rows: int,
               reserve: Callable[[SearchResult], float] = lambda _: 0.0,
               warm_start: list[dict[str, Any]] | None = None,
               given: list[dict[str, Any]] | None = None,
               on_trial: Callable[[TrialRecord, SearchResult], None] | None = None,
               keep_oof: int = 30, models_dir: Path | None = None,
               feature_space: dict[str, Any] | None = None, folds: tuple[int, int] = (5, 1),
               stop: Callable[[], bool] | None = None,
               near_end: tuple[float, Callable[[], None]] | None = None, limit: Cost | None = None,
               journal: tuple[Journal, Resumed] | None = None) -> SearchResult:
    """Run trials until `end - reserve(result)` (epoch seconds) or `cfg.max_trials`, whichever comes first.

    `reserve` is re-estimated as trials finish (what the ensemble refit will need), so the search
    uses all the time the later stages do not. `given` configurations run before `warm_start`'s (the
    portfolio's) whatever the table. With `models_dir`, finished trials save their fold
    models there (`trial_<id>.pkl`); only those of the `keep_oof` best trials are kept.
    `feature_space` adds the feature settings (`features.feature_space`) to every family's space.
    `folds` is (k, repeats) of the workers' evaluation; k = 1 (a holdout) is never repeated late.
    `stop` ends the search at once when it turns true; running trials are abandoned.
    `near_end` (seconds, call): the call is made once, that many seconds before the search's end.
    `limit` (`search.objective: pareto`): the ensemble's limits, which a trial's model alone must keep.
    `journal` (the journal, what the search this one resumes finished): every trial is written to it as
    it is sent and as it comes back; a trial the resumed search already finished is not run again.
    On a holdout of many rows, trials climb rungs of rows (tabpilot.search.fidelity).
    """
    search = _Search(pool, cfg, seed, end, rows, reserve, (given or [], warm_start or []), keep_oof, models_dir,
                     feature_space, folds)
    search.limit = limit
    if journal is not None:
        search.resume(*journal)
    while stop is None or not stop():
        if near_end is not None and time.time() >= search.deadline() - near_end[0]:
            near_end[1]()
            near_end = None
        search.submit()
        if not search.running and not search.repeating and not search.promoting:
            break
        for record in search.collect():
            if on_trial is not None:
                on_trial(record, search.result)
    return search.finish()


class _Search:
    """One search's state: the queue of known configurations, the strategy, the trials running and finished."""

    def __init__(self, pool: Pool, cfg: SearchConfig, seed: int, end: float, rows: int,
                 reserve: Callable[[SearchResult], float],
                 warm_start: tuple[list[dict[str, Any]], list[dict[str, Any]]],
                 keep_oof: int, models_dir: Path | None, feature_space: dict[str, Any] | None,
                 folds: tuple[int, int]) -> None:
        self.pool, self.cfg, self.end, self.reserve = pool, cfg, end, reserve
        self.keep_oof, self.models_dir = keep_oof, models_dir
        families = applicable(cfg.families, rows, cfg.families_from_rows)
        self.strategy = make_strategy(cfg.strategy, families, seed, cfg.startup_trials, rows, feature_space)
        self.n_folds, self.repeats = folds
        # Rung k fits self.rungs[k] of a holdout's training rows; k-fold has one rung, all rows.
        pool_rows = rows - math.ceil(holdout_share(rows) * rows) if self.n_folds == 1 else rows
        self.rungs = fidelity.rungs(pool_rows) if self.n_folds == 1 else [pool_rows]
        # Stored configurations as this space runs them, so one equal to a family default runs once.
        given, stored = ([{**c, "params": clip_to_space(c["family"], c["params"], rows)}
                          for c in configs if c["family"] in families and fits_space(c)] for configs in warm_start)
        defaults = defaults_in_order(families, rows)
        # The cheapest family's default runs first and no deadline stops it: whatever the machine's load,
        # every search delivers a model (30-45 s budgets used to end with "no trial finished").
        first, warm = defaults[:1], given + stored
        if len(self.rungs) > 1:
            # The portfolio was chosen on tables of thousands of rows, and early finishers climb first:
            # each family's default screens it on the first rung's rows before any stored configuration
            # (1M rows: CatBoost's default came 17th, at 179 s, too late to climb; results/scale_*.md).
            given = [c for c in given if c not in first]
            self.queue = first + given + [c for c in defaults[1:] if c not in given] + \
                [c for c in stored if c not in defaults and c not in given]
        else:
            self.queue = first + [c for c in warm if c not in first] + [c for c in defaults[1:] if c not in warm]
        self.result = SearchResult([], {})
        self.running: dict[int, tuple[dict[str, Any], float]] = {}
        self.finished: list[TrialRecord] = []  # finished, not yet told to the strategy
        self.submitted, self.worst_loss = 0, 0.0
        self.limit: Cost | None = None
        self.synchronous = cfg.max_trials is not None
        # A trial count runs rounds of search.n_workers, so it gives the same model on any pool or cluster
        self.pool_size = cfg.n_workers if self.synchronous else pool.idle() + pool.busy()
        self.start = time.time()
        self.repeating: set[int] = set()  # trials with a late repeat running
        self.done_repeating: set[int] = set()  # trials whose late repeat failed or ran out of time
        self.at_rung: list[dict[int, float]] = [{} for _ in self.rungs]  # per rung: trial -> loss there
        self.promoting: dict[int, int] = {}  # trial -> the rung it is being fitted at
        self.promoted: list[set[int]] = [set() for _ in self.rungs]  # per rung: sent up from it, or too slow to be
        self.journal: Journal | None = None
        self.resumed: dict[int, Entry] = {}  # the resumed search's trials not yet replayed
        self.resumed_extras: dict[Extra, Outcome] = {}  # its later jobs (repeats, promotions) that finished
        self.replayed: list[Outcome] = []  # their outcomes, handed back at the next collect

    def resume(self, journal: Journal, resumed: Resumed) -> None:
        """Journal every trial; replay what `resumed` finished instead of running it again.
        With max_trials the search asks the strategy as before and replays each trial whose id and
        configuration are those the resumed search had (the same seed gives the same model). On a
        clock the strategy heard trials in the order they finished, so its proposals cannot be asked
        again: the resumed search's trials go first, as known configurations, under their own ids."""
        self.journal, self.resumed, self.resumed_extras = journal, dict(resumed.trials), dict(resumed.extras)
        entries = resumed.trials
        if not self.synchronous and entries:
            sent = [entries[t].candidate for t in sorted(entries)]
            known = [(c["family"], c["params"]) for c in sent]
            self.queue = sent + [c for c in self.queue if (c["family"], c["params"]) not in known]

    def deadline(self) -> float:
        return self.end - self.reserve(self.result)

    def submit(self) -> None:
        """Give idle workers trials: a synchronous round (max_trials) once all are back, else as
        workers free up while time is left; the first trial runs in any case."""
        if self.synchronous:
            if self.running or self.promoting:  # a round is heard once all of it is back: the same on any machine
                return
            self._tell_finished()
            time_left = time.time() < self.deadline() - 1.0
            for _ in range(self.pool_size if time_left else 0 if self.submitted else 1):
                up = self._promotion()
                if up is not None:
                    self._submit_promotion(*up)
                elif self.submitted < self.cfg.max_trials:  # type: ignore[operator]
                    self._submit_one()
            return
        self._tell_finished()
        while self.pool.idle() > 0 and (time.time() < self.deadline() - 1.0 or not self.submitted):
            again = self._late_repeat()
            up = None if again else self._promotion()
            if again:
                self._submit_repeat(again)
            elif up is not None:
                self._submit_promotion(*up)
            else:
                self._submit_one()

    def collect(self) -> list[TrialRecord]:
        """The trials that finished within a second (late repeats merged into theirs, not returned)."""
        new = []
        replayed, self.replayed = self.replayed, []
        arrived = [(o, True) for o in replayed] + [(o, False) for o in self.pool.wait(timeout=0.0 if replayed else 1.0)]
        for outcome, was_replayed in arrived:
            if isinstance(outcome.job_id, tuple):
                if self.journal is not None and not was_replayed:
                    self.journal.extra(self._extra_key(outcome.job_id), outcome)
                if outcome.job_id[0] == "promote":
                    self._merge_promotion(outcome)
                else:
                    merge_repeat(self.result, outcome, self.repeating, self.done_repeating)
                keep_best_oof(self.result, self.keep_oof, self.models_dir)
                continue
            candidate, started = self.running.pop(outcome.job_id)
            if self.journal is not None and not was_replayed:
                self.journal.finished(outcome.job_id, candidate, outcome)
            record = trial_record(outcome, candidate, started)
            if record.loss is not None:
                self.result.oof[record.trial] = outcome.result["oof"]  # type: ignore[index]
                if record.status == "ok":
                    self.at_rung[0][record.trial] = record.loss
            record.repeats = self.repeats
            self.finished.append(record)
            self.result.records.append(record)
            keep_best_oof(self.result, self.keep_oof, self.models_dir)
            new.append(record)
        return new

    def finish(self) -> SearchResult:
        result, models_dir = self.result, self.models_dir
        result.records.sort(key=lambda r: r.trial)
        if models_dir is not None and models_dir.exists():  # a trial killed while saving leaves a stray file
            for path in models_dir.glob("trial_*.pkl"):
                if int(path.stem.split("_")[1]) not in result.oof:
                    path.unlink()
            for path in models_dir.glob("trial_*.pkl.part"):
                path.unlink()
        return result

    def _late_repeat(self) -> TrialRecord | None:
        """The best trial with the fewest repeats so far, once the search is late (never with
        max_trials, whose runs must not depend on the machine's speed)."""
        if self.synchronous or self.n_folds == 1 or time.time() - self.start < max(
                LATE_MIN_SECONDS, LATE_SHARE * (self.deadline() - self.start)):
            return None
        now, limit = time.time(), self.deadline()
        open_ = [r for r in self.result.held()[:LATE_TOP] if r.late < LATE_REPEATS
                 and r.trial not in self.repeating | self.done_repeating
                 and now + 1.2 * r.fit_time / r.repeats < limit]
        return min(open_, key=lambda r: r.late) if open_ else None

    def _submit_repeat(self, record: TrialRecord) -> None:
        self.repeating.add(record.trial)
        limit = self.deadline()
        payload = {"candidate": candidate_of(record), "deadline": limit, "repeat": record.repeats,
                   "merge": (self.result.oof[record.trial], record.late) if record.late else None,
                   "keep_models": self._models_path(record.trial)}
        self._submit_extra(("repeat", record.trial), payload, limit)

    def _promotion(self) -> tuple[TrialRecord, int] | None:
        """The trial due to move up a rung (the highest rung's first), if its fit there can end before
        the search does (on a clock); one that cannot is not tried again."""
        for rung in range(len(self.rungs) - 2, -1, -1):
            for trial in fidelity.promotable(self.at_rung[rung], self.promoted[rung], first=rung == 0):
                record = self._record_of(trial)
                seconds = fidelity.scaled_seconds(record.fit_time, self.rungs[rung], self.rungs[rung + 1])
                if self.synchronous or time.time() + 1.2 * seconds < self.deadline():
                    return record, rung + 1
                self.promoted[rung].add(trial)
        return None

    def _submit_promotion(self, record: TrialRecord, rung: int) -> None:
        """Fit a trial again on the next rung's rows; its model there replaces the one kept."""
        self.promoted[rung - 1].add(record.trial)
        self.promoting[record.trial] = rung
        top = rung == len(self.rungs) - 1
        limit = self.deadline()
        payload = {"candidate": candidate_of(record), "deadline": limit, "rows": None if top else self.rungs[rung],
                   "keep_models": self._models_path(record.trial)}
        self._submit_extra(("promote", record.trial, rung), payload, limit)

    def _merge_promotion(self, outcome: Outcome) -> None:
        """A trial's fit on more rows: its score, predictions and time become those (a failed one
        leaves the lower rung's)."""
        _, trial, rung = outcome.job_id
        self.promoting.pop(trial, None)
        res = outcome.result or {}
        if res.get("status") != "ok":
            return
        record = self._record_of(trial)
        self.result.oof[trial] = res["oof"]
        self.at_rung[rung][trial] = res["loss"]
        record.score, record.loss, record.fit_time, record.rung = res["score"], res["loss"], res["fit_time"], rung
        record.rows, record.fold_scores = res.get("rows"), list(res["fold_scores"])
        record.models_kept, record.predict_time = bool(res.get("models_kept")), float(res.get("predict_time", 0.0))
        record.predict_cost = res.get("predict_cost") or record.predict_cost
        record.decided = res.get("decided", record.decided)

    def _submit_extra(self, job_id: tuple[Any, ...], payload: dict[str, Any], limit: float) -> None:
        """A trial's later job, or its outcome from the resumed search's journal."""
        done = self.resumed_extras.pop(self._extra_key(job_id), None)
        if done is not None:
            self.replayed.append(done)
        else:
            self.pool.submit(job_id, cross_validate, payload, limit)

    def _extra_key(self, job_id: tuple[Any, ...]) -> Extra:
        """A later job as the journal names it: a promotion by its rung, a repeat by its count."""
        if job_id[0] == "promote":
            return "promote", job_id[1], job_id[2]
        return "repeat", job_id[1], self._record_of(job_id[1]).late + 1

    def _record_of(self, trial: int) -> TrialRecord:
        return next(r for r in self.result.records if r.trial == trial)

    def _prune_threshold(self) -> float | None:
        """Median first-fold loss of the trials so far; known defaults are never pruned."""
        if not self.cfg.prune or self.queue:
            return None
        firsts = [r.first_fold_loss for r in self.result.records if r.first_fold_loss is not None]
        return float(np.median(firsts)) if len(firsts) >= MIN_TRIALS_TO_PRUNE else None

    def _submit_one(self) -> None:
        if self.queue:
            tid, candidate = self.strategy.suggest_point(self.queue.pop(0))
        else:
            tid, candidate = self.strategy.ask()
        self.running[tid] = (candidate, time.time())
        if self._replay(tid, candidate):
            return
        limit = math.inf if self.submitted == 0 else self.deadline()
        rungs = len(self.rungs) > 1  # a first rung of fewer rows
        payload = {"candidate": candidate, "deadline": limit, "prune_above": self._prune_threshold(),
                   "keep_models": self._models_path(tid), "rows": self.rungs[0] if rungs else None}
        self.pool.submit(tid, cross_validate, payload, limit)
        self.submitted += 1

    def _replay(self, tid: int, candidate: dict[str, Any]) -> bool:
        """Hand back the resumed search's outcome of this trial if it finished with this configuration;
        else journal it as sent."""
        entry = self.resumed.pop(tid, None)
        if entry is not None and entry.outcome is not None and entry.candidate == candidate:
            self.replayed.append(entry.outcome)
            self.submitted += 1
            return True
        if self.journal is not None:
            self.journal.sent(tid, candidate)
        return False

    def _models_path(self, trial: int) -> str | None:
        return str(self.models_dir / f"trial_{trial}.pkl") if self.models_dir else None

    def _tell_finished(self) -> None:
        """Tell the strategy the finished trials in trial order, so its history does not depend on which
        worker finished first. A pruned trial tells its first fold's loss; a stopped or failed one, or
        (with `limit`) one whose model alone breaks the limit, "worse than anything seen", so the
        strategy moves away from it."""
        for record in sorted(self.finished, key=lambda r: r.trial):
            if record.loss is not None:
                self.worst_loss = max(self.worst_loss, record.loss)
                told = record.loss
                if self.limit is not None and record.predict_cost and not alone(record.predict_cost).within(self.limit):
                    record.over_limit, told = True, self.worst_loss + 1.0  # no ensemble can serve it
            elif record.status == "pruned" and record.first_fold_loss is not None:
                told = record.first_fold_loss
            else:
                told = self.worst_loss + 1.0
            self.strategy.tell(record.trial, told)
        self.finished.clear()


