"""pytest-xdist coordination: the scan scope, values computed once per run, and the workers' analysis times.

Workers must collect exactly the same items, and under xdist a worker's arguments
no longer tell whether the user gave paths or relied on ``testpaths``, so the
controller sends its decision in ``workerinput``. Repository-wide values (the scan,
the inventory, the repository rules' results) are computed by one process and read
by the others through a folder of this run. Each worker sends its analysis cache
counts and rule times back in ``workeroutput``, for the controller's ``-vv`` summary.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from pytest_aiml.engine.runner import RuleTimes

log = logging.getLogger("pytest_aiml.xdist")

_WORKERINPUT_KEY = "aiml_scope"
_SHARED_KEY = "aiml_shared_directory"
_ANALYSIS_TIMES_KEY = "aiml_analysis_times"
T = TypeVar("T")


@dataclass(frozen=True)
class ScanScope:
    """The scope of a run: the generated items it collects.

    ``explicit``: the user named paths, so file items follow pytest's traversal of
    them; otherwise every file of the repository is scanned. ``include_repository``:
    the repository-scoped items run (no paths given, or the rootdir among them).
    """

    explicit: bool
    include_repository: bool
    #: ``--aiml-only``: pytest collects nothing itself; the items come from the named paths.
    only: bool = False
    #: The named paths, relative to the rootdir, when ``only`` is set and paths were given.
    paths: tuple[str, ...] = ()

    def covers(self, relative: str) -> bool:
        """Tell whether a repository file lies under one of the named paths (all files when none)."""
        return not self.paths or any(
            path in (".", "") or relative == path or relative.startswith(path.rstrip("/") + "/") for path in self.paths
        )


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def decide_scope(config: pytest.Config) -> ScanScope:
    if is_worker(config) and _WORKERINPUT_KEY in config.workerinput:  # type: ignore[attr-defined]
        stored = dict(config.workerinput[_WORKERINPUT_KEY])  # type: ignore[attr-defined]
        stored["paths"] = tuple(stored.get("paths", ()))
        return ScanScope(**stored)
    explicit = config.args_source == pytest.Config.ArgsSource.ARGS
    rootdir = Path(str(config.rootpath)).resolve()
    invocation = Path(config.invocation_params.dir)
    named = [(invocation / arg.split("::", 1)[0]).resolve() for arg in config.args]
    named_root = any(path == rootdir for path in named)
    if config.getoption("aiml_only"):
        paths = tuple(sorted(os.path.relpath(path, rootdir).replace(os.sep, "/") for path in named)) if explicit else ()
        return ScanScope(explicit=False, include_repository=not explicit or named_root, only=True, paths=paths)
    return ScanScope(explicit=explicit, include_repository=not explicit or named_root)


class XdistHooks:
    """Hooks that exist only when pytest-xdist is installed."""

    def __init__(self, scope: ScanScope) -> None:
        self.scope = scope
        #: Created by the controller for this run only; workers put repository-wide results there.
        self.shared_directory: Path | None = None
        #: What each finished worker sent with :func:`send_analysis_times`, by worker id.
        self.analysis_times: dict[str, dict[str, object]] = {}

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: object) -> None:
        node.workerinput[_WORKERINPUT_KEY] = asdict(self.scope)  # type: ignore[attr-defined]
        if self.shared_directory is None:
            self.shared_directory = Path(tempfile.mkdtemp(prefix="pytest-aiml-run-"))
        node.workerinput[_SHARED_KEY] = str(self.shared_directory)  # type: ignore[attr-defined]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: object, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        if _ANALYSIS_TIMES_KEY in output:
            worker = node.workerinput.get("workerid", f"worker {len(self.analysis_times) + 1}")  # type: ignore[attr-defined]
            self.analysis_times[str(worker)] = output[_ANALYSIS_TIMES_KEY]

    def pytest_unconfigure(self) -> None:
        if self.shared_directory is not None:
            shutil.rmtree(self.shared_directory, ignore_errors=True)


def shared_directory(config: pytest.Config) -> Path | None:
    """Return this run's folder for results the workers and the controller share, if any."""
    if is_worker(config):
        value = config.workerinput.get(_SHARED_KEY)  # type: ignore[attr-defined]
        return Path(value) if value else None
    hooks = config.pluginmanager.get_plugin("aiml-xdist")
    return getattr(hooks, "shared_directory", None)


@dataclass(frozen=True)
class WorkerAnalysis:
    """A pytest-xdist worker's analysis: its cache counts, its rule times, and the files another worker scanned for it."""

    #: Hits and misses of the analysis cache, or None when the worker never opened it.
    cache_counts: tuple[int, int] | None
    rule_times: RuleTimes
    files_from_other_worker: int = 0


def send_analysis_times(config: pytest.Config, analysis: WorkerAnalysis) -> None:
    """Send a worker's analysis to the controller, which shows it with ``-vv``."""
    config.workeroutput[_ANALYSIS_TIMES_KEY] = {  # type: ignore[attr-defined]
        "cache": list(analysis.cache_counts) if analysis.cache_counts is not None else None,
        "seconds": dict(analysis.rule_times.seconds),
        "files": dict(analysis.rule_times.files),
        "from_other_worker": analysis.files_from_other_worker,
    }


def received_analysis_times(config: pytest.Config) -> dict[str, WorkerAnalysis]:
    """Return the analysis of each worker that has finished, by worker id."""
    from pytest_aiml.engine.runner import RuleTimes

    hooks = config.pluginmanager.get_plugin("aiml-xdist")
    received: dict[str, WorkerAnalysis] = {}
    for worker, sent in sorted(getattr(hooks, "analysis_times", {}).items()):
        cache = sent.get("cache")
        counts = (int(cache[0]), int(cache[1])) if isinstance(cache, (list, tuple)) else None
        rule_times = RuleTimes(dict(sent.get("seconds") or {}), dict(sent.get("files") or {}))
        received[worker] = WorkerAnalysis(counts, rule_times, int(sent.get("from_other_worker") or 0))
    return received


def can_share(directory: Path | None) -> bool:
    """Tell whether :func:`computed_once` can share a value between processes through ``directory``."""
    return directory is not None and directory.is_dir() and importlib.util.find_spec("fcntl") is not None


def computed_once(directory: Path | None, name: str, compute: Callable[[], T]) -> T:
    """Return ``compute()``, computed by only one process of the run and read by the others.

    The first process to take the lock computes the value and stores it in
    ``directory``; the others wait for the lock and load it. The folder is created
    by the controller for this run alone (``mkdtemp``, readable only by its user),
    which is why loading a pickle from it is safe: nothing else writes there. Without
    a folder, or where file locks are unavailable, each process computes its own.
    """
    if directory is None or not directory.is_dir():
        return compute()
    stored = directory / f"{name}.pickle"
    with _locked(directory / f"{name}.lock") as locked:
        if not locked:
            return compute()
        if stored.is_file():
            with stored.open("rb") as stream:
                return pickle.load(stream)  # noqa: S301 - written by this run, in a private folder
        value = compute()
        _store(stored, value)
        return value


def computed_ahead(directory: Path | None, name: str, result: Callable[[], T]) -> bool:
    """Store ``result()`` for :func:`computed_once`, holding its lock from now until the value is stored.

    For a value this process already computes elsewhere, in a background process, and
    that ``result`` waits for: the other processes of the run then wait for that value
    instead of computing it again. A thread waits and stores it, so this process goes
    on meanwhile. If ``result`` raises, nothing is stored, and each process that needs the
    value computes it itself and meets the error there. Returns whether the thread was
    started; it is not where values cannot be shared, or one is already stored.
    """
    if not can_share(directory):
        return False
    import fcntl

    assert directory is not None
    stored = directory / f"{name}.pickle"
    # The lock is taken before this call returns, so no other process can take it first.
    # A flock lock belongs to the open file, not to the thread, so the thread can release it.
    handle = (directory / f"{name}.lock").open("a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    if stored.is_file():
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
        return False

    def store() -> None:
        try:
            _store(stored, result())
        except Exception as error:  # noqa: BLE001 - reported by the processes that compute it again
            log.debug("computing %s ahead failed (%s), so each process that needs it computes it", name, error)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    # Not a daemon: the worker does not exit before the value is stored, and the controller
    # reads it (for the terminal summary) after the workers have exited.
    threading.Thread(target=store, name=f"pytest-aiml {name}").start()
    return True


def _store(stored: Path, value: object) -> None:
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=stored.parent)
    with os.fdopen(handle, "wb") as stream:
        pickle.dump(value, stream, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(temporary, stored)


@contextmanager
def _locked(path: Path) -> Iterator[bool]:
    try:
        import fcntl
    except ImportError:  # Windows: no shared results, each process computes its own.
        yield False
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
