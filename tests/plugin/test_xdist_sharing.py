"""Sharing work between pytest-xdist workers: values computed once, ahead or on demand, and what each worker reports."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from pytest_aiml.xdist_support import computed_ahead, computed_once


def _in_thread(function):  # type: ignore[no-untyped-def]
    """Run ``function`` in a thread, and return the thread and a list that receives its result."""
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(function()))
    thread.start()
    return thread, results


def test_value_computed_ahead_is_read_by_the_others(tmp_path: Path) -> None:
    release = threading.Event()

    def background_result() -> str:
        release.wait(timeout=30)
        return "from the background"

    assert computed_ahead(tmp_path, "repository", background_result)
    # computed_once opens the lock file again, so it waits even in this process, as another worker would.
    reader, results = _in_thread(lambda: computed_once(tmp_path, "repository", lambda: "computed again"))
    reader.join(timeout=0.3)
    assert reader.is_alive(), "the reader waits while the value is computed ahead"
    release.set()
    reader.join(timeout=30)
    assert results == ["from the background"]


def test_failed_value_ahead_is_computed_by_the_reader(tmp_path: Path) -> None:
    def failing() -> str:
        raise RuntimeError("the background process died")

    assert computed_ahead(tmp_path, "repository", failing)
    assert computed_once(tmp_path, "repository", lambda: "computed again") == "computed again"


def test_value_already_stored_is_not_computed_ahead(tmp_path: Path) -> None:
    assert computed_once(tmp_path, "repository", lambda: "first") == "first"
    called: list[int] = []
    assert not computed_ahead(tmp_path, "repository", lambda: called.append(1) or "second")
    assert computed_once(tmp_path, "repository", lambda: "third") == "first"
    assert called == []


def test_nothing_ahead_without_a_shared_folder(tmp_path: Path) -> None:
    assert not computed_ahead(None, "repository", lambda: "value")
    assert not computed_ahead(tmp_path / "missing", "repository", lambda: "value")


COUNTING_RULE_CONFTEST = '''
import os

from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.rule import Category, Effort, Example, Priority, RepoRule


class CountedCheck(RepoRule):
    """A repository rule that notes each of its checks in a file, from whichever process checks it."""

    code = "AIML953"
    slug = "counted-check"
    category = Category.MLOPS
    priority = Priority.LOW
    effort = Effort.LOW
    message = "the repository has a module named train.py"
    impact = "Only here to count the checks of a repository rule."
    fix = "Nothing to fix."
    VALID = (Example(files={"model.py": "x = 1\\\\n"}),)
    INVALID = (Example(files={"train.py": "x = 1\\\\n"}),)

    def check(self, inventory):
        with open(os.environ["AIML_CHECKS_FILE"], "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()}\\\\n")
        if "train.py" in inventory.repo.paths:
            yield Finding(code=self.code, path="train.py", message="train.py exists")


def pytest_aiml_register_rules(registry):
    registry.add(CountedCheck)
'''

TRAIN = "import torch\n\n\ndef fit(loss, optimizer):\n    loss.backward()\n    optimizer.step()\n"


@pytest.mark.parametrize("repeat", range(3))
def test_repository_rules_checked_once_per_xdist_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, repeat: int) -> None:
    # Enough modules for one worker to scan them all over the pool, which then starts the
    # repository rules in a process of their own for both workers and the controller.
    checks = pytester.path / "checks.txt"
    monkeypatch.setenv("AIML_CHECKS_FILE", str(checks))
    pytester.makeconftest(COUNTING_RULE_CONFTEST)
    pytester.makepyfile(train=TRAIN, **{f"module_{index:02d}": "import json\n" for index in range(30)})
    args = ("--aiml-only", "-p", "no:randomly", "-rA", "-p", "no:cacheprovider")
    plain = pytester.runpytest(*args)
    assert len(checks.read_text().split()) == 1
    checks.unlink()
    xdist = pytester.runpytest(*args, "-n", "2")
    assert len(checks.read_text().split()) == 1, "one check per run, not one per worker"
    assert xdist.parseoutcomes() == plain.parseoutcomes()
    for run in (plain, xdist):
        assert [line for line in run.outlines if "AIML953" in line and line.startswith("FAILED")]


def test_verbose_xdist_run_shows_each_workers_analysis(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**{f"module_{index:02d}": "import pickle\n\n\ndef load(s):\n    return pickle.load(s)\n" for index in range(30)})
    args = ("--aiml-only", "--aiml-select=AIML101", "-p", "no:randomly", "-vv", "-n", "2")
    cold = pytester.runpytest(*args)
    cold.stdout.fnmatch_lines(["*- aiml analysis time -*"])
    caches = [line for line in cold.outlines if line.startswith("analysis cache of gw")]
    assert len(caches) == 2
    # The worker that took the lock first missed every file and scanned them all. The other
    # missed those it looked up before the scan wrote them, and took them from that scan.
    [scanner] = [line for line in caches if line.endswith(": 0 hits, 30 misses")]
    other = re.fullmatch(
        r"analysis cache of gw\d: (\d+) hits?, (\d+) miss(?:es)?(?: \((\d+) files? from another worker's scan\))?",
        caches[1 - caches.index(scanner)],
    )
    assert other is not None, caches
    assert int(other[1]) + int(other[2]) == 30
    assert int(other[3] or 0) == int(other[2])
    # The worker that scanned timed the parse and the rule over every file.
    cold.stdout.re_match_lines([r"parse +\d+\.\d\ds +30 files", r"AIML101 +\d+\.\d\ds +30 files"])
    warm = pytester.runpytest(*args)
    warm.stdout.fnmatch_lines(["analysis cache of gw0: 30 hits, 0 misses", "analysis cache of gw1: 30 hits, 0 misses", "every file came from the cache"])
