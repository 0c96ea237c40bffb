"""Output shape entries written as arithmetic over named input dimensions.

An output shape entry is an integer, a dimension name (``"batch"``) or a small
expression such as ``"features * 2"`` or ``"tokens - 1"``. Expressions are parsed
with :mod:`ast` and evaluated by walking the tree, never with ``eval``, so a
configuration file cannot run code.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

_OPERATORS = {
    ast.Add: lambda left, right: left + right,
    ast.Sub: lambda left, right: left - right,
    ast.Mult: lambda left, right: left * right,
    ast.FloorDiv: lambda left, right: left // right,
}


class ShapeExpressionError(ValueError):
    """A shape entry that is not an integer, a dimension name or an allowed expression."""


def expression_names(expression: str) -> tuple[str, ...]:
    """Parse ``expression`` and return the dimension names it uses, in order of appearance.

    Raises :class:`ShapeExpressionError` for syntax other than integers, names,
    ``+``, ``-``, ``*``, ``//`` and parentheses.
    """
    tree = _parse(expression)
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in names:
            names.append(node.id)
    return tuple(names)


def evaluate_dimension(entry: int | str, sizes: Mapping[str, int]) -> int:
    """Compute the size an output shape entry stands for, given the input's dimension sizes."""
    if isinstance(entry, int):
        return entry
    return _evaluate(_parse(entry).body, sizes)


def _parse(expression: str) -> ast.Expression:
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise ShapeExpressionError(f"{expression!r} is not a valid expression: {error.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.Name, ast.Load, ast.BinOp, *_OPERATORS)):
            continue
        if isinstance(node, ast.Constant) and type(node.value) is int:
            continue
        raise ShapeExpressionError(
            f"{expression!r} uses {type(node).__name__}; only integers, dimension names, "
            "+, -, *, // and parentheses are allowed"
        )
    return tree


def _evaluate(node: ast.expr, sizes: Mapping[str, int]) -> int:
    if isinstance(node, ast.Constant):
        return int(node.value)
    if isinstance(node, ast.Name):
        return sizes[node.id]
    assert isinstance(node, ast.BinOp)
    operator = _OPERATORS[type(node.op)]
    return operator(_evaluate(node.left, sizes), _evaluate(node.right, sizes))
