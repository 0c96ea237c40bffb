"""Import the functions that preprocessing specs name as ``module:function``.

Kept apart from :mod:`pytest_aiml.properties.spec` because importing a user's
module runs its code: parsing a configuration must never do that.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.properties.spec import PreprocessingSpec, check_reference

logger = logging.getLogger("pytest_aiml.properties")


@dataclass(frozen=True, slots=True)
class SpecFunctions:
    """The callables one spec names: the function itself, its serving twin and its inverse."""

    function: Callable[..., Any]
    twin: Callable[..., Any] | None = None
    inverse: Callable[..., Any] | None = None


def resolve_function(reference: str, root: Path, key: str) -> Callable[..., Any]:
    """Import ``module:function`` with ``root`` (the repository root) first on ``sys.path``.

    ``function`` may be a dotted attribute path (``module:Class.method``). ``root``
    stays on ``sys.path`` only during the import. Raises
    :class:`~pytest_aiml.engine.errors.ConfigError` naming ``key`` and
    ``reference`` when the module cannot be imported, raises while importing, lacks
    the attribute, or the attribute is not callable.
    """
    check_reference(reference, key)
    module_name, _, attribute_path = reference.partition(":")

    with _path_first(root):
        # A module written after the last import in this process would otherwise be
        # missed by the path finders' directory caches.
        importlib.invalidate_caches()
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            raise ConfigError(
                key,
                f"cannot import {reference!r}: {error}",
                f"check the module path; modules are imported with {str(root)!r} on sys.path",
            ) from error
        except Exception as error:  # the user's module may raise anything at import time
            raise ConfigError(
                key,
                f"importing module {module_name!r} for {reference!r} raised {type(error).__name__}: {error}",
                "fix the error in that module",
            ) from error

    target: Any = module
    for position, attribute in enumerate(attribute_path.split(".")):
        try:
            target = getattr(target, attribute)
        except AttributeError:
            owner = ".".join([module_name, *attribute_path.split(".")[:position]])
            raise ConfigError(
                key,
                f"{reference!r} not found: {owner!r} has no attribute {attribute!r}",
                "check the function name after the colon",
            ) from None
    if not callable(target):
        raise ConfigError(
            key,
            f"{reference!r} is a {type(target).__name__}, not a function",
            "name a function or another callable",
        )
    logger.debug("resolved %s from %s", reference, getattr(module, "__file__", module_name))
    return target


def resolve_spec_functions(spec: PreprocessingSpec, root: Path) -> SpecFunctions:
    """Import the function, serving twin and inverse that ``spec`` names."""
    return SpecFunctions(
        function=resolve_function(spec.function, root, spec.key),
        twin=None if spec.matches is None else resolve_function(spec.matches, root, f"{spec.key}.matches"),
        inverse=None if spec.inverse is None else resolve_function(spec.inverse, root, f"{spec.key}.inverse"),
    )


@contextmanager
def _path_first(root: Path) -> Iterator[None]:
    entry = str(root)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        # Remove only the entry added here; the imported module may have changed
        # sys.path itself.
        try:
            sys.path.remove(entry)
        except ValueError:
            pass
