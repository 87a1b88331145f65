"""Thin Prefect tasks around the library's stage functions. No ML logic lives here.

Tasks take the validated Config and the run's paths and return the stage's small record; data
moves between stages only as files. No retries: every stage is compute, where a retry repeats a
deterministic failure.
"""
from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tabpilot import modeling, pipeline, registry
from tabpilot.artifacts import RunPaths
from tabpilot.config import Config

_options: dict[str, Any] = {"cache_policy": NO_CACHE, "retries": 0}


@task(name="ingest", **_options)
def ingest_data(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    return pipeline.ingest(cfg, paths)


@task(name="validate", **_options)
def validate_data(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    return pipeline.validate(cfg, paths)


@task(name="split", **_options)
def split_data(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    return pipeline.split(cfg, paths)


@task(name="preprocess", **_options)
def plan_preprocessing(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    return pipeline.preprocess(cfg, paths)


@task(name="features", **_options)
def plan_features(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    return pipeline.features(cfg, paths)


@task(name="search", **_options)
def search_models(cfg: Config, paths: RunPaths, started: float) -> dict[str, Any]:
    return modeling.search(cfg, paths, started)


@task(name="ensemble", **_options)
def build_ensemble(cfg: Config, paths: RunPaths, started: float) -> dict[str, Any]:
    return modeling.ensemble(cfg, paths, started)


@task(name="register", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def register_model(cfg: Config, paths: RunPaths) -> dict[str, Any]:
    # The only stage that talks to a possibly remote server (the registry): a retry can help.
    return registry.register(cfg, paths)
