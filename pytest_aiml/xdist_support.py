"""pytest-xdist coordination: the controller decides the scan scope, workers follow it.

Workers must collect exactly the same items, and under xdist a worker's arguments
no longer tell whether the user gave paths or relied on ``testpaths``, so the
controller sends its decision in ``workerinput``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

_WORKERINPUT_KEY = "aiml_scope"


@dataclass(frozen=True)
class ScanScope:
    """Which generated items a run collects.

    ``explicit``: the user named paths, so file items follow pytest's traversal of
    them; otherwise every file of the repository is scanned. ``include_repository``:
    the repository-scoped items run (no paths given, or the rootdir among them).
    """

    explicit: bool
    include_repository: bool


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def decide_scope(config: pytest.Config) -> ScanScope:
    if is_worker(config) and _WORKERINPUT_KEY in config.workerinput:  # type: ignore[attr-defined]
        return ScanScope(**config.workerinput[_WORKERINPUT_KEY])  # type: ignore[attr-defined]
    explicit = config.args_source == pytest.Config.ArgsSource.ARGS
    rootdir = Path(str(config.rootpath)).resolve()
    invocation = Path(config.invocation_params.dir)
    named_root = any((invocation / arg.split("::", 1)[0]).resolve() == rootdir for arg in config.args)
    return ScanScope(explicit=explicit, include_repository=not explicit or named_root)


class XdistHooks:
    """Hooks that exist only when pytest-xdist is installed."""

    def __init__(self, scope: ScanScope) -> None:
        self.scope = scope

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: object) -> None:
        node.workerinput[_WORKERINPUT_KEY] = asdict(self.scope)  # type: ignore[attr-defined]
