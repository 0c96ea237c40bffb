"""Module-level preprocessing constants written as literals, read without running the module.

The repository rules compare such constants (``FEATURE_MEANS = [0.5, 12.0]``,
``VOCAB = {"a": 0}``) between training and serving modules. The inventory reads only
text signals, so these few modules are parsed here with the standard ``ast`` module
and each value goes through :func:`ast.literal_eval`, which evaluates literals only
and never calls anything.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_aiml.engine.ast_facts import add_import, qualified_name

log = logging.getLogger("pytest_aiml.constants")

#: Name parts that mark a preprocessing constant: normalisation statistics, value
#: ranges, vocabularies and label or category mappings.
PREPROCESSING_NAME_PARTS = frozenset(
    {
        "mean", "means", "mu", "std", "stds", "stdev", "stddev", "sigma", "scale", "scales",
        "min", "mins", "minimum", "max", "maxs", "maximum", "vocab", "vocabs", "vocabulary",
        "mapping", "mappings", "labels", "categories", "classes", "id2label", "label2id",
    }
)
_RANGE_PARTS = frozenset({"min", "mins", "minimum", "max", "maxs", "maximum"})
#: Name parts that turn ``MAX_*`` / ``MIN_*`` into an operational limit rather than a value
#: range: ``MAX_BATCH_SIZE``, ``MAX_RETRIES`` and ``MIN_WORKERS`` may differ between
#: training and serving on purpose.
_OPERATIONAL_PARTS = frozenset(
    {
        "batch", "worker", "workers", "retry", "retries", "attempts", "epoch", "epochs", "step", "steps",
        "timeout", "seconds", "secs", "sec", "ms", "thread", "threads", "connections", "requests",
        "concurrency", "replicas", "memory", "bytes", "mb", "gb", "lr", "patience", "iter", "iters",
        "iterations", "queue", "wait", "delay", "grad", "new", "file", "upload", "content", "port", "rps",
    }
)
#: Calls that wrap a literal into an array without changing its values.
ARRAY_FACTORIES = frozenset({"numpy.array", "numpy.asarray", "torch.tensor", "torch.as_tensor"})
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class LiteralConstant:
    """A module-level name bound once to a literal value."""

    name: str
    value: Any
    #: Position of the assignment; the line is 1-based and the column 1-based as in findings.
    line: int
    column: int


def name_parts(name: str) -> list[str]:
    """Split ``FEATURE_MEANS`` or ``featureMeans`` into lowercase parts: ``["feature", "means"]``."""
    parts = []
    for chunk in name.split("_"):
        parts.extend(piece.lower() for piece in _CAMEL_BOUNDARY.split(chunk) if piece)
    return parts


def is_preprocessing_name(name: str) -> bool:
    """Tell whether a name marks a preprocessing constant (a mean, a vocabulary, a label mapping)."""
    parts = name_parts(name)
    found = PREPROCESSING_NAME_PARTS.intersection(parts)
    if not found:
        return False
    if found <= _RANGE_PARTS and _OPERATIONAL_PARTS.intersection(parts):
        return False
    return True


def preprocessing_constants(text: str, path: str = "<text>") -> dict[str, LiteralConstant]:
    """Return the module-level preprocessing constants of a Python source, by name.

    Only statements directly in the module body count. A name bound more than once,
    bound to something that is not a literal, or changed later (``VOCAB["x"] = 3``,
    ``MEAN += 1``) is left out, because its value at run time is unknown. A literal
    wrapped in ``numpy.array`` / ``torch.tensor`` counts as the literal. A source that
    does not parse returns an empty mapping.
    """
    try:
        module = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError) as error:
        log.debug("%s: not read for constants: %s", path, error)
        return {}
    imports = _imports(module)
    found: dict[str, LiteralConstant] = {}
    changed: set[str] = set()
    for statement in module.body:
        for name, value in _bindings(statement):
            if name in found or name in changed:
                found.pop(name, None)
                changed.add(name)
                continue
            constant = _literal(value, imports) if value is not None else _UNKNOWN
            if constant is _UNKNOWN or not is_preprocessing_name(name):
                changed.add(name)
                continue
            found[name] = LiteralConstant(name, constant, statement.lineno, statement.col_offset + 1)
    return found


_UNKNOWN = object()


def _bindings(statement: ast.stmt) -> list[tuple[str, ast.expr | None]]:
    """Return ``(name, value)`` for each name a statement binds or changes; None marks an unknown value."""
    if isinstance(statement, ast.Assign):
        pairs: list[tuple[str, ast.expr | None]] = []
        for target in statement.targets:
            pairs.extend(_target_bindings(target, statement.value))
        return pairs
    if isinstance(statement, ast.AnnAssign):
        if statement.value is None:
            return []
        return _target_bindings(statement.target, statement.value)
    if isinstance(statement, ast.AugAssign):
        return _target_bindings(statement.target, None)
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        # ``VOCAB.update(extra)`` or ``LABELS.append("x")`` changes the value in place.
        func = statement.value.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            return [(func.value.id, None)]
    if isinstance(statement, ast.Delete):
        return [pair for target in statement.targets for pair in _target_bindings(target, None)]
    return []


def _target_bindings(target: ast.expr, value: ast.expr | None) -> list[tuple[str, ast.expr | None]]:
    if isinstance(target, ast.Name):
        return [(target.id, value)]
    if isinstance(target, (ast.Tuple, ast.List)):
        # ``MEAN, STD = 0.5, 0.2`` binds each name to its element when both sides line up.
        values = value.elts if isinstance(value, (ast.Tuple, ast.List)) else None
        if values is not None and len(values) == len(target.elts) and not any(isinstance(e, ast.Starred) for e in target.elts):
            return [pair for element, item in zip(target.elts, values) for pair in _target_bindings(element, item)]
        return [pair for element in target.elts for pair in _target_bindings(element, None)]
    if isinstance(target, (ast.Subscript, ast.Attribute)):
        # ``VOCAB["x"] = 3`` or ``LABELS.extra = 1`` changes the named object.
        base = target.value
        while isinstance(base, (ast.Subscript, ast.Attribute)):
            base = base.value
        if isinstance(base, ast.Name):
            return [(base.id, None)]
    if isinstance(target, ast.Starred):
        return _target_bindings(target.value, None)
    return []


def _literal(value: ast.expr, imports: Mapping[str, str]) -> Any:
    if isinstance(value, ast.Call) and qualified_name(value.func, imports) in ARRAY_FACTORIES:
        if len(value.args) == 1 and not isinstance(value.args[0], ast.Starred):
            value = value.args[0]
        else:
            return _UNKNOWN
    try:
        return ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNKNOWN


def _imports(module: ast.Module) -> dict[str, str]:
    """Map local names to the modules or objects they import, from the module's top-level imports."""
    names: dict[str, str] = {}
    for statement in module.body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            add_import(names, statement)
    return names


def same_value(left: Any, right: Any) -> bool:
    """Compare two literal values, treating a list and a tuple with equal elements as equal."""
    return _normalized(left) == _normalized(right)


def _normalized(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normalized(item) for item in value]
    if isinstance(value, dict):
        return {key: _normalized(item) for key, item in value.items()}
    return value
