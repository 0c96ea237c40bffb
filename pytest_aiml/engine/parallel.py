"""Spreading a cold scan of many files over the available cores."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pytest_aiml.engine.cache import AnalysisCache
from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.inventory import views_ahead
from pytest_aiml.engine.registry import RuleRegistry
from pytest_aiml.engine.runner import FileAnalysis, analyze_text, screen
from pytest_aiml.engine.signals import FileSignals, file_signals

log = logging.getLogger("pytest_aiml.parallel")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """The settings every job of a scan shares, which forked workers inherit instead of receiving them per job."""

    registry: RuleRegistry
    repo: RepoContext
    cache: AnalysisCache
    profile: bool = False


@dataclass(frozen=True, slots=True)
class FileScan:
    """One file's share of a cold scan: its analysis (with the rules that apply), its inventory signals and views."""

    analysis: FileAnalysis
    #: None for a notebook that is not valid JSON; the inventory leaves it out, as it does when it reads the file itself.
    signals: FileSignals | None
    #: The views the repository rules will likely read, by name (``inventory.views_ahead``).
    views: dict[str, Any] = field(default_factory=dict)


#: The settings the forked workers inherit: the registry (custom rules included), the context and the cache.
_WORKER_SETTINGS: ScanSettings | None = None

#: The maximum number of processes a scan starts by default: parsing scales, process start-up costs.
DEFAULT_MAX_WORKERS = 8


def default_workers() -> int:
    return min(os.cpu_count() or 1, DEFAULT_MAX_WORKERS)


def scan_file(path: str, content: bytes, settings: ScanSettings) -> FileScan:
    """Do all the per-file work of a cold scan: screening, analysis, cache entry, signals and views.

    All of it depends on the file alone, so it runs in the pool's workers, and the main
    process only reads, hashes and collects.
    """
    text = content.decode("utf-8-sig", errors="replace")
    screening = screen(path, text, settings.registry.file_rules(), check_syntax=False)
    if screening.failure is not None:
        analysis = FileAnalysis(path, screening.codes, failure=screening.failure)
    elif screening.rules:
        analysis = analyze_text(path, text, screening.rules, settings.repo, profile=settings.profile, screened=True)
    else:
        analysis = FileAnalysis(path, ())
    settings.cache.put(path, content, analysis)
    signals = file_signals(path, text)
    return FileScan(analysis, signals, views_ahead(path, text, signals))


def scan_in_pool(jobs: Sequence[tuple[str, bytes]], settings: ScanSettings, workers: int | None = None) -> Iterator[FileScan]:
    """Scan ``(path, bytes)`` jobs, in ``workers`` processes when that pays off.

    Workers are forked so that they inherit rules registered by a conftest.py, which
    a fresh interpreter could not import by name. Where fork is unavailable, or with
    one worker, the jobs run here, one after another. Results come back in job order.
    """
    global _WORKER_SETTINGS
    workers = default_workers() if workers is None else workers
    if workers < 2 or len(jobs) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for path, content in jobs:
            yield scan_file(path, content, settings)
        return
    _WORKER_SETTINGS = settings
    # Frozen, the heap the workers inherit is left out of their garbage collections, so its
    # pages stay shared instead of being copied, and out of this process's while it builds items.
    gc.freeze()
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            # Small chunks: most files cost nothing, a few cost a second, and the last
            # chunk of a worker should not leave the other cores idle.
            chunk = max(1, len(jobs) // (workers * 16))
            yield from pool.map(_scan_job, jobs, chunksize=chunk)
    finally:
        _WORKER_SETTINGS = None
        gc.unfreeze()


def _scan_job(job: tuple[str, bytes]) -> FileScan:
    assert _WORKER_SETTINGS is not None, "the pool's workers are forked after the settings are set"
    path, content = job
    return scan_file(path, content, _WORKER_SETTINGS)


#: The function a background process runs, which the forked process inherits.
_BACKGROUND: Callable[[], Any] | None = None


def start_in_background(function: Callable[[], T]) -> Callable[[], T]:
    """Start ``function`` in a forked process while this one goes on; return a call that waits for its result.

    The result travels back pickled, and an exception the function raises is raised by
    the call. Without fork, or if the process dies, the call runs ``function`` here.
    """
    global _BACKGROUND
    if "fork" not in multiprocessing.get_all_start_methods():
        return function
    _BACKGROUND = function
    try:
        executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
        future = executor.submit(_run_background)
    finally:
        _BACKGROUND = None

    def result() -> T:
        try:
            return future.result()
        except BrokenProcessPool as error:
            log.debug("the background process died (%s); computing here instead", error)
            return function()
        finally:
            executor.shutdown(wait=True)

    return result


def _run_background() -> Any:
    assert _BACKGROUND is not None, "the process is forked after the function is set"
    return _BACKGROUND()
