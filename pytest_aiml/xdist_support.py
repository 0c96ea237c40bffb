"""pytest-xdist coordination: the controller decides the scan scope, workers follow it.

Workers must collect exactly the same items, and under xdist a worker's arguments
no longer tell whether the user gave paths or relied on ``testpaths``, so the
controller sends its decision in ``workerinput``.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import pytest

_WORKERINPUT_KEY = "aiml_scope"
_SHARED_KEY = "aiml_shared_directory"
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

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: object) -> None:
        node.workerinput[_WORKERINPUT_KEY] = asdict(self.scope)  # type: ignore[attr-defined]
        if self.shared_directory is None:
            self.shared_directory = Path(tempfile.mkdtemp(prefix="pytest-aiml-run-"))
        node.workerinput[_SHARED_KEY] = str(self.shared_directory)  # type: ignore[attr-defined]

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
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        with os.fdopen(handle, "wb") as stream:
            pickle.dump(value, stream, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, stored)
        return value


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
