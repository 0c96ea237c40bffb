"""Cheap facts of a module from CPython's ``ast``, to skip libcst where no rule can report.

CPython parses a module about ten times faster than libcst builds its tree. A rule
that can name what a file must contain for a finding (a call to ``torch.load``, a loop
that both back-propagates and steps an optimizer) declares it in
:meth:`~pytest_aiml.engine.rule.FileRule.candidate`, and a file no remaining rule is a
candidate for is never parsed by libcst.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from functools import cached_property


class AstFacts:
    """Facts of one parsed module, each computed on first use and shared by every rule."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree

    @cached_property
    def _by_type(self) -> dict[type[ast.AST], list[ast.AST]]:
        # One walk of the tree, shared by every fact below: ``ast.walk`` is a Python generator.
        index: dict[type[ast.AST], list[ast.AST]] = {}
        for node in ast.walk(self.tree):
            index.setdefault(type(node), []).append(node)
        return index

    def nodes(self, *kinds: type[ast.AST]) -> list[ast.AST]:
        """Return the nodes of the given exact types, in ``ast.walk`` order within each type."""
        return [node for kind in kinds for node in self._by_type.get(kind, ())]

    @cached_property
    def calls(self) -> frozenset[str]:
        """Every name a callee may resolve to through the imports (``torch.load``), under any import of its first name.

        A candidate check rules a file out when a name is absent, so this errs on the side
        of more names; see :meth:`resolutions`.
        """
        return frozenset(name for _, names in self.resolved_calls for name in names if name is not None)

    @cached_property
    def callee_names(self) -> frozenset[str]:
        """The last part of every callee, resolved or not: ``load`` for ``ckpt.load(...)``."""
        return frozenset(name for node in self.nodes(ast.Call) if (name := callee_name(node.func)) is not None)

    @cached_property
    def strings(self) -> tuple[str, ...]:
        """Every string constant, implicit concatenations joined and f-string text included."""
        return tuple(node.value for node in self.nodes(ast.Constant) if isinstance(node.value, str))

    def calls_to(self, names: frozenset[str]) -> list[ast.Call]:
        """Return the calls whose callee may resolve to one of ``names``, in ``ast.walk`` order."""
        return [node for node, resolved in self.resolved_calls if not resolved.isdisjoint(names)]

    def resolves_to(self, expr: ast.expr, names: frozenset[str]) -> bool:
        """Tell whether ``expr`` may resolve to one of ``names``, under any import of its first name."""
        return not self.resolutions(expr).isdisjoint(names)

    @cached_property
    def bindings(self) -> dict[str, frozenset[str]]:
        """Map each local name to every name an import binds it to, relative imports included.

        A name imported twice (``np`` as ``numpy`` in the module and as ``jax.numpy`` in a
        function) resolves in ModuleContext through whichever import its traversal saw last,
        so a check on ``ast`` has to allow for each of them.
        """
        bound: dict[str, set[str]] = {}
        for node in self.nodes(ast.Import, ast.ImportFrom):
            for local, target in import_bindings(node):
                bound.setdefault(local, set()).add(target)
        return {local: frozenset(targets) for local, targets in bound.items()}

    def may_import(self, *modules: str) -> bool:
        """Tell whether some import binds one of ``modules`` or a submodule, as ``ModuleContext.imports_any`` checks."""
        return any(
            target == module or target.startswith(module + ".")
            for targets in self.bindings.values()
            for target in targets
            for module in modules
        )

    @cached_property
    def _module_level_names(self) -> frozenset[str]:
        # ModuleContext reads the imports of the module body before its traversal starts, so
        # these names resolve everywhere. A name imported only in a block or a function stays
        # unresolved until the traversal reaches that import.
        return frozenset(
            local
            for node in self.tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for local, _ in import_bindings(node)
        )

    def resolutions(self, expr: ast.expr) -> frozenset[str | None]:
        """Return every name ``ModuleContext.qualified_name`` may give ``expr`` during its traversal.

        None stands for an unresolved name: a local variable, a builtin, anything that is
        not a name or attribute chain, or a name whose only imports sit in a block or a
        function. A rule that needs a name to resolve one way can rule a file out only
        if every member of the set agrees.
        """
        parts: list[str] = []
        while isinstance(expr, ast.Attribute):
            parts.append(expr.attr)
            expr = expr.value
        if not isinstance(expr, ast.Name) or expr.id not in self.bindings:
            return _UNRESOLVED
        suffix = "".join(f".{part}" for part in reversed(parts))
        names: set[str | None] = {target + suffix for target in self.bindings[expr.id]}
        if expr.id not in self._module_level_names:
            names.add(None)
        return frozenset(names)

    @cached_property
    def resolved_calls(self) -> tuple[tuple[ast.Call, frozenset[str | None]], ...]:
        """Every call with the names its callee may resolve to (see :meth:`resolutions`)."""
        return tuple((node, self.resolutions(node.func)) for node in self.nodes(ast.Call))

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


def import_bindings(node: ast.Import | ast.ImportFrom) -> list[tuple[str, str]]:
    """Return the local names an import binds and what each names, exactly as ModuleContext records them.

    Unlike :func:`add_import`, relative imports are kept (``from .utils import seed`` binds
    ``seed`` to ``.utils.seed``), because in ModuleContext they replace an earlier binding.
    """
    if isinstance(node, ast.Import):
        # ``import torch.nn`` binds ``torch``; ``import torch.nn as nn`` binds ``nn`` to ``torch.nn``.
        tops = (alias.name.split(".", 1)[0] for alias in node.names)
        return [(alias.asname, alias.name) if alias.asname else (top, top) for alias, top in zip(node.names, tops)]
    prefix = "." * node.level + (node.module or "")
    found = []
    for alias in node.names:
        if alias.name == "*":
            continue
        target = f"{prefix}.{alias.name}" if prefix and not prefix.endswith(".") else prefix + alias.name
        found.append((alias.asname or alias.name, target))
    return found


#: The resolutions of a name that no import binds.
_UNRESOLVED: frozenset[str | None] = frozenset({None})


def qualified_name(expr: ast.expr, imports: Mapping[str, str]) -> str | None:
    """Return the dotted name a name or attribute chain refers to through ``imports``; None for local names."""
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name) or expr.id not in imports:
        return None
    return ".".join([imports[expr.id], *reversed(parts)])


#: Definitions whose bodies run when they are called, not where they are written.
NESTED_SCOPES: tuple[type[ast.AST], ...] = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def own_nodes(roots: Iterable[ast.AST], skipped: tuple[type[ast.AST], ...] = NESTED_SCOPES) -> list[ast.AST]:
    """Return ``roots`` and every node below them, leaving out nodes of the ``skipped`` kinds and all below those."""
    found: list[ast.AST] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        if isinstance(node, skipped):
            continue
        found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def callee_name(func: ast.expr) -> str | None:
    """Return ``step`` for ``optimizer.step`` and ``load`` for ``load``: the name a call is made by."""
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def argument(call: ast.Call, position: int | None, keyword: str | None) -> ast.expr | None:
    """Find an argument by keyword, or else by position, as ``context.call_argument`` does on libcst.

    Positions count only the arguments before the first ``*args``.
    """
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    if position is None:
        return None
    for index, value in enumerate(call.args):
        if isinstance(value, ast.Starred):
            return None
        if index == position:
            return value
    return None


def unpacks_kwargs(call: ast.Call) -> bool:
    """Tell whether a call passes ``**kwargs``, which may hold any keyword a rule looks for."""
    return any(keyword.arg is None for keyword in call.keywords)


def keyword_constant(call: ast.Call, name: str) -> object:
    """Return the literal value of keyword ``name`` (``weights_only=True`` gives True); None otherwise."""
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None
