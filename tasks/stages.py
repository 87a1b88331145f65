"""Prefect tasks: the library's stage functions, each wrapped as it is. No ML logic lives here.

Tasks take the validated Config and the run's paths and return the stage's small record; data
moves between stages only as files. Compute stages never retry (a retry repeats a deterministic
failure); registering talks to a possibly remote registry, where a retry can help.
"""
from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tabpilot.data import prepare
from tabpilot.registry import retraining
from tabpilot.training import ensemble_stage, search_stage
from tasks import promotion

ingest_data = task(prepare.ingest, name="ingest", cache_policy=NO_CACHE)
validate_data = task(prepare.validate, name="validate", cache_policy=NO_CACHE)
split_data = task(prepare.split, name="split", cache_policy=NO_CACHE)
plan_preprocessing = task(prepare.preprocess, name="preprocess", cache_policy=NO_CACHE)
plan_features = task(prepare.features, name="features", cache_policy=NO_CACHE)
search_models = task(search_stage.search, name="search", cache_policy=NO_CACHE)
build_ensemble = task(ensemble_stage.ensemble, name="ensemble", cache_policy=NO_CACHE)
register_model = task(promotion.register, name="register", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
fetch_champion = task(retraining.fetch_champion, name="champion", cache_policy=NO_CACHE, retries=2,
                      retry_delay_seconds=2)
check_drift = task(retraining.check_drift, name="drift", cache_policy=NO_CACHE)
summarise_retrain = task(retraining.summarise, name="summary", cache_policy=NO_CACHE)
