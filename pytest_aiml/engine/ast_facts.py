"""Cheap facts of a module from CPython's ``ast``, to skip libcst where no rule can report.

CPython parses a module about ten times faster than libcst builds its tree. A rule
that can name what a file must contain for a finding (a call to ``torch.load``, a loop
that both back-propagates and steps an optimizer) declares it in
:meth:`~pytest_aiml.engine.rule.FileRule.candidate`, and a file no remaining rule is a
candidate for is never parsed by libcst.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from functools import cached_property


class AstFacts:
    """Facts of one parsed module, each computed on first use and shared by every rule."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree

    @cached_property
    def imports(self) -> dict[str, str]:
        """Map local names to what they import, from every import statement of the module (nested ones too)."""
        names: dict[str, str] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                add_import(names, node)
        return names

    @cached_property
    def calls(self) -> frozenset[str]:
        """Qualified names of the calls whose callee resolves through the imports (``torch.load``)."""
        found = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                name = self.qualified(node.func)
                if name is not None:
                    found.add(name)
        return frozenset(found)

    def calls_to(self, names: frozenset[str]) -> list[ast.Call]:
        """Return the calls whose callee resolves to one of ``names``, in source order."""
        return [
            node for node in ast.walk(self.tree)
            if isinstance(node, ast.Call) and self.qualified(node.func) in names
        ]

    def qualified(self, expr: ast.expr) -> str | None:
        """Resolve ``T.serialization.load`` to ``torch.serialization.load`` through the imports."""
        return qualified_name(expr, self.imports)

    def loops_calling(self, *groups: frozenset[str]) -> bool:
        """Tell whether one loop calls, by method or function name, a name of every group.

        ``loops_calling({"backward"}, {"step"})`` is true for a loop whose body (nested
        blocks included) calls ``loss.backward()`` and ``optimizer.step()``.
        """
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
                names = {callee_name(call.func) for call in ast.walk(node) if isinstance(call, ast.Call)}
                if all(names & group for group in groups):
                    return True
        return False


def add_import(names: dict[str, str], node: ast.Import | ast.ImportFrom) -> None:
    """Record the local names an import statement binds: ``import torch as T`` maps ``T`` to ``torch``.

    Relative imports bind nothing here, because they name the project's own modules.
    """
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                names[alias.asname] = alias.name
            else:
                top = alias.name.split(".", 1)[0]
                names[top] = top
    elif node.module and not node.level:
        for alias in node.names:
            names[alias.asname or alias.name] = f"{node.module}.{alias.name}"


def qualified_name(expr: ast.expr, imports: Mapping[str, str]) -> str | None:
    """Return the dotted name a name or attribute chain refers to through ``imports``; None for local names."""
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name) or expr.id not in imports:
        return None
    return ".".join([imports[expr.id], *reversed(parts)])


def callee_name(func: ast.expr) -> str | None:
    """Return ``step`` for ``optimizer.step`` and ``load`` for ``load``: the name a call is made by."""
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def keyword_constant(call: ast.Call, name: str) -> object:
    """Return the literal value of keyword ``name`` (``weights_only=True`` gives True); None otherwise."""
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None
