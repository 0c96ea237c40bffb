"""Spreading a cold scan of many files over the available cores."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor

from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.registry import RuleRegistry
from pytest_aiml.engine.runner import FileAnalysis, analyze_text

log = logging.getLogger("pytest_aiml.parallel")

#: The state the forked workers inherit: the registry (custom rules included) and the context.
_WORKER_STATE: tuple[RuleRegistry, RepoContext, bool] | None = None


#: The maximum number of processes a scan starts by default: parsing scales, process start-up costs.
DEFAULT_MAX_WORKERS = 8


def default_workers() -> int:
    return min(os.cpu_count() or 1, DEFAULT_MAX_WORKERS)


def analyze_in_pool(
    jobs: Sequence[tuple[str, str, tuple[str, ...]]],
    registry: RuleRegistry,
    repo: RepoContext,
    workers: int | None = None,
    *,
    profile: bool = False,
) -> Iterator[FileAnalysis]:
    """Analyse ``(path, text, rule codes)`` jobs, in ``workers`` processes when that pays off.

    Workers are forked so that they inherit rules registered by a conftest.py, which
    a fresh interpreter could not import by name. Where fork is unavailable, or with
    one worker, the jobs run here, one after another. Results come back in job order.
    """
    global _WORKER_STATE
    workers = default_workers() if workers is None else workers
    if workers < 2 or len(jobs) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for path, text, codes in jobs:
            yield analyze_text(path, text, [registry.get(code) for code in codes], repo, profile=profile)
        return
    _WORKER_STATE = (registry, repo, profile)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            chunk = max(1, len(jobs) // (workers * 8))
            yield from pool.map(_analyze_job, jobs, chunksize=chunk)
    finally:
        _WORKER_STATE = None


def _analyze_job(job: tuple[str, str, tuple[str, ...]]) -> FileAnalysis:
    assert _WORKER_STATE is not None, "the pool's workers are forked after the state is set"
    registry, repo, profile = _WORKER_STATE
    path, text, codes = job
    return analyze_text(path, text, [registry.get(code) for code in codes], repo, profile=profile)
