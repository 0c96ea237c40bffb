"""The fixer contract: how a rule's codemod rewrites one node that the rule reported.

A fixer never looks for nodes itself. The fix step runs the rule, keeps the findings
that no waiver or baseline settles, and hands the fixer exactly the nodes behind
them. The fixer returns a replacement for each node, or the reason it has none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pytest_aiml.engine.context import ModuleContext
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.walk import Visitor, walk


@dataclass(frozen=True, slots=True)
class NoFix:
    """A finding left as it is, with the reason the fix summary shows for it."""

    reason: str


@dataclass(frozen=True, slots=True)
class ImportName:
    """``from module import name``, added to each statement that imports ``beside`` from ``module``.

    A fix that turns ``load(x)`` into ``safe_load(x)`` after ``from yaml import load``
    needs ``safe_load`` bound the same way, next to the name the code already imports.
    """

    module: str
    name: str
    beside: str


@dataclass(frozen=True, slots=True)
class Rewrite:
    """The replacement of a reported node, and the names it needs imported."""

    node: cst.CSTNode
    imports: tuple[ImportName, ...] = ()


class FixContext:
    """The module a fixer rewrites, as far as a fixer needs it beyond the node itself."""

    def __init__(self, module_context: ModuleContext, names_in_use: frozenset[str]) -> None:
        self.module_context = module_context
        #: Every identifier the module binds or reads (attribute names after a dot excluded).
        self.names_in_use = names_in_use

    def qualified_name(self, expr: cst.BaseExpression) -> str | None:
        return self.module_context.qualified_name(expr)

    def refer_to(self, qualified: str, like: cst.BaseExpression) -> tuple[cst.BaseExpression, tuple[ImportName, ...]] | NoFix:
        """Build an expression for ``qualified`` in the style of ``like``, which names a sibling of it.

        ``like`` is the callee as written. For ``y.load`` (``import yaml as y``) the
        result is ``y.safe_load``. For a bare ``load`` (``from yaml import load``) it is
        ``safe_load``, imported beside ``load``, unless the module already uses that name.
        """
        module, _, name = qualified.rpartition(".")
        if isinstance(like, cst.Attribute):
            return like.with_changes(attr=cst.Name(name)), ()
        if not isinstance(like, cst.Name):
            return NoFix(f"the callee is not a plain name or attribute, so {qualified} cannot be written in its place")
        for local, bound in self.module_context.imports.items():
            if bound == qualified:
                return cst.Name(local), ()
        if name in self.names_in_use:
            return NoFix(f"the name {name!r} is already used in this module, so {qualified} cannot be imported under it")
        return cst.Name(name), (ImportName(module=module, name=name, beside=like.value),)


class Fixer:
    """The codemod of one rule: rewrites the nodes that the rule reported, one at a time.

    Subclasses implement :meth:`rewrite`. It receives the reported node as the fix
    step has rebuilt it so far (a nested finding inside it may already be fixed) and
    must change only that node. It returns :class:`NoFix` for findings whose fix is a
    human decision or cannot be done mechanically.
    """

    def rewrite(self, node: cst.CSTNode, context: FixContext) -> Rewrite | NoFix:
        raise NotImplementedError


class _NameCollector(Visitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        # ``obj.tensor`` does not bind or read a variable called ``tensor``.
        walk(node.value, self)
        return False


def names_in_use(module: cst.Module) -> frozenset[str]:
    """Collect every identifier of the module except attribute names after a dot.

    A string or comment that mentions a name does not count. A parameter, a local
    variable or a ``global`` anywhere does, so a new import never shadows one.
    """
    collector = _NameCollector()
    walk(module, collector)
    return frozenset(collector.names)


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def keyword_argument(name: str, value: str, like: Iterable[cst.Arg] = ()) -> cst.Arg:
    """Build ``name=value``, spaced like the first keyword argument of ``like`` (PEP 8 when none)."""
    assert _IDENTIFIER.match(name), name
    equal = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
    for arg in like:
        if arg.keyword is not None and isinstance(arg.equal, cst.AssignEqual):
            equal = arg.equal
            break
    return cst.Arg(keyword=cst.Name(name), equal=equal, value=cst.parse_expression(value))
