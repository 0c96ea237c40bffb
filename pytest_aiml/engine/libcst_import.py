"""libcst, imported the first time it is used rather than when the rules are imported.

A warm run takes every file's findings from the cache and parses nothing. Importing
libcst took about 0.2 s there, as long as all of pytest-aiml's own work in such a run
on pytorch-lightning (646 files). So the rule modules and the engine modules they use
refer to libcst as ``cst`` from here. It is a module object that imports libcst when
one of its attributes is first read. Then it turns into a plain module holding
libcst's names, so each later read costs what a read of ``libcst`` itself costs.

Nothing at the top level of those modules may read an attribute of ``cst``: not a base
class, not a tuple of node types. Node types needed outside a function come from
:func:`node_types`, and visitors that walk part of a tree derive from
:class:`pytest_aiml.engine.walk.Visitor`.
"""

from __future__ import annotations

import functools
import importlib
import types
from typing import TYPE_CHECKING, Any

__all__ = ["cst", "load", "loaded", "node_types"]


class _ImportedOnFirstUse(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        # Called only for names the module does not hold yet, so only before the import.
        if name.startswith("_"):
            # Tools probe the names of a module for private attributes, as pytest reads
            # ``_mock_name`` on each name of a conftest.py that holds rules. libcst's API has
            # no private names, so such a probe must not cost the import.
            raise AttributeError(f"module 'libcst' has no attribute {name!r} until it is imported")
        return getattr(load(), name)


def load() -> types.ModuleType:
    """Import libcst now, if it is not imported yet, and return it."""
    module = importlib.import_module("libcst")
    if not loaded():
        cst.__dict__.update(module.__dict__)
        # From here on ``cst`` is an ordinary module, so no hook runs on its reads.
        cst.__class__ = types.ModuleType
    return module


def loaded() -> bool:
    """Tell whether libcst has been imported through ``cst``."""
    return type(cst) is types.ModuleType


@functools.cache
def node_types(*names: str) -> tuple[type, ...]:
    """Return the libcst node classes of these names, for ``isinstance``. The first call imports libcst."""
    return tuple(getattr(cst, name) for name in names)


if TYPE_CHECKING:
    import libcst as cst
else:
    cst = _ImportedOnFirstUse("libcst")
