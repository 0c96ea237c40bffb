"""pytest-xdist coordination: the controller decides the scan scope, workers follow it.

Workers must collect exactly the same items, and under xdist a worker's arguments
no longer tell whether the user gave paths or relied on ``testpaths``, so the
controller sends its decision in ``workerinput``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

_WORKERINPUT_KEY = "aiml_scope"


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

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: object) -> None:
        node.workerinput[_WORKERINPUT_KEY] = asdict(self.scope)  # type: ignore[attr-defined]
