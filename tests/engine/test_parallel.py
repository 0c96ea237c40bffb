"""The process pool of a cold scan and the background process of the repository rules."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from pytest_aiml.engine import parallel
from pytest_aiml.engine.cache import AnalysisCache
from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.parallel import ScanSettings, scan_in_pool, start_in_background
from pytest_aiml.engine.registry import builtin_rules

FORK = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
UNSAFE = b"import pickle\n\n\ndef load(stream):\n    return pickle.load(stream)\n"


def test_pool_results_come_back_in_job_order() -> None:
    jobs = [(f"module_{index:02d}.py", UNSAFE if index % 3 == 0 else b"import json\n") for index in range(30)]
    settings = ScanSettings(builtin_rules(), RepoContext(), AnalysisCache(None, "salt"))
    pooled = list(scan_in_pool(jobs, settings, workers=2))
    serial = list(scan_in_pool(jobs, settings, workers=1))
    assert [scan.analysis.path for scan in pooled] == [path for path, _ in jobs]
    assert pooled == serial
    assert sum(bool(scan.analysis.findings) for scan in pooled) == 10


@FORK
def test_background_result_comes_from_another_process() -> None:
    wait = start_in_background(os.getpid)
    assert wait() != os.getpid()


@FORK
def test_background_exception_is_raised_by_the_wait() -> None:
    def broken() -> None:
        raise LookupError("no such table")

    wait = start_in_background(broken)
    with pytest.raises(LookupError, match="no such table"):
        wait()


@FORK
def test_dead_background_process_runs_here() -> None:
    parent = os.getpid()

    def dies_in_the_child() -> int:
        if os.getpid() != parent:
            os._exit(3)
        return 42

    assert start_in_background(dies_in_the_child)() == 42


def test_without_fork_the_wait_runs_the_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    calls = []
    wait = start_in_background(lambda: calls.append(1) or len(calls))
    assert calls == []
    assert wait() == 1
