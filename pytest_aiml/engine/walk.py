"""A read-only walk over a libcst tree, several times faster than ``CSTNode.visit``.

libcst's own traversal is built for transformers: it rebuilds and validates every node
on the way back up, even for a visitor that changes nothing, and a batched traversal
looks up each visitor's methods with :func:`inspect.getmembers` on every call. On
pytorch-lightning that machinery took longer than the rules themselves.

This walk reads each node's child fields in place and calls the same ``visit_<Type>``
and ``leave_<Type>`` methods as libcst, in the same order. It visits the children of a
node in the order of libcst's own traversal, which is the order of the source text.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Sequence

from pytest_aiml.engine.libcst_import import cst

__all__ = ["Visitor", "children", "walk", "walk_batched"]

_Handler = Callable[["cst.CSTNode"], object]
_NOTHING: frozenset[type] = frozenset()


# Whitespace nodes own nothing but other whitespace and comments, and make up about half
# the nodes of a module. A walk skips them when none of its visitors has a handler for them.
# The two functions below build the sets on first use, because libcst is imported then.


@functools.cache
def _leaf_whitespace() -> frozenset[type]:
    """Return the whitespace types that never contain a comment, skipped even when a visitor reads comments."""
    return frozenset({cst.SimpleWhitespace, cst.Newline})


@functools.cache
def _whitespace() -> frozenset[type]:
    """Return every whitespace and comment type, skipped when no visitor handles any of them."""
    return _leaf_whitespace() | {
        cst.Comment, cst.TrailingWhitespace, cst.EmptyLine, cst.ParenthesizedWhitespace, cst.BaseParenthesizableWhitespace,
    }


class Visitor:
    """A read-only visitor of part of a libcst tree, for :func:`walk`.

    It has the ``on_visit`` and ``on_leave`` of libcst's ``CSTVisitor``, which call the
    ``visit_<Type>`` and ``leave_<Type>`` methods. It does not derive from that class, so
    a module that defines a visitor can be imported without importing libcst.
    """

    def on_visit(self, node: cst.CSTNode) -> bool:
        method = getattr(self, "visit_" + type(node).__name__, None)
        return method is None or method(node) is not False

    def on_leave(self, original_node: cst.CSTNode) -> None:
        method = getattr(self, "leave_" + type(original_node).__name__, None)
        if method is not None:
            method(original_node)


#: Whether a type is a libcst node: ``isinstance`` against the abstract base is slow.
_IS_NODE: dict[type, bool] = {}
#: Per node type and skipped set: the fields to read, in visit order, with whether each is a sequence.
_PLANS: dict[tuple[type, frozenset[type]], tuple[tuple[str, bool], ...]] = {}


def _is_node(kind: type) -> bool:
    known = _IS_NODE.get(kind)
    if known is None:
        known = _IS_NODE[kind] = issubclass(kind, cst.CSTNode)
    return known


def child_fields(kind: type[cst.CSTNode]) -> tuple[dataclasses.Field, ...]:
    """Return the fields of a node type in the order libcst visits them.

    Each libcst node visits its children in ``_visit_and_replace_children`` by passing
    every field's name to a helper, in source order, so the order in which those names
    first appear among the method's constants is the visit order. A field that is not
    named there (none in libcst 1.x) comes after, in declaration order.
    """
    fields = {field.name: field for field in dataclasses.fields(kind)}
    method = getattr(kind, "_visit_and_replace_children", None)
    constants = method.__code__.co_consts if method is not None else ()
    ordered = [name for name in dict.fromkeys(c for c in constants if isinstance(c, str)) if name in fields]
    ordered.extend(name for name in fields if name not in ordered)
    return tuple(fields[name] for name in ordered)


def _plan(kind: type, skip: frozenset[type]) -> tuple[tuple[str, bool], ...]:
    """Return the fields of ``kind`` that may hold a node not in ``skip``, in visit order."""
    plan = _PLANS.get((kind, skip))
    if plan is None:
        entries = []
        for field in child_fields(kind):
            annotation = field.type
            sequence = typing.get_origin(annotation) in (Sequence, list, tuple)
            element = typing.get_args(annotation)[0] if sequence and typing.get_args(annotation) else annotation
            if element in (str, bool, int) or element in skip:
                continue
            entries.append((field.name, sequence))
        plan = _PLANS[(kind, skip)] = tuple(entries)
    return plan


def _children(node: cst.CSTNode, skip: frozenset[type]) -> list[cst.CSTNode]:
    found = []
    for name, _sequence in _plan(type(node), skip):
        value = getattr(node, name)
        kind = type(value)
        # An annotation states the expected type of a field, not the actual one, so each value is checked.
        if kind is tuple or kind is list:
            found.extend(item for item in value if type(item) not in skip and _is_node(type(item)))
        elif kind not in skip and _is_node(kind):
            found.append(value)
    return found


def children(node: cst.CSTNode, *, whitespace: bool = True) -> list[cst.CSTNode]:
    """Return the direct children of ``node`` in source order, as libcst's ``node.children``
    does without rebuilding the node; with ``whitespace=False``, leave out whitespace and comments."""
    return _children(node, _NOTHING if whitespace else _whitespace())


class _Dispatch:
    """The visit and leave handlers of a batch of visitors, looked up once per node type."""

    def __init__(self, visitors: Sequence[object]) -> None:
        self.visitors = visitors
        self._visit: dict[type, tuple[_Handler, ...]] = {}
        self._leave: dict[type, tuple[_Handler, ...]] = {}
        if not self._handles(_whitespace()):
            self.skip = _whitespace()
        elif not self._handles(_leaf_whitespace()):
            self.skip = _leaf_whitespace()
        else:
            self.skip = _NOTHING

    def _handles(self, kinds: frozenset[type]) -> bool:
        return any(handlers for kind in kinds for handlers in self.handlers(kind))

    def handlers(self, kind: type) -> tuple[tuple[_Handler, ...], tuple[_Handler, ...]]:
        visit = self._visit.get(kind)
        if visit is None:
            name = kind.__name__
            visit = self._visit[kind] = self._bound("visit_" + name)
            self._leave[kind] = self._bound("leave_" + name)
        return visit, self._leave[kind]

    def _bound(self, name: str) -> tuple[_Handler, ...]:
        handlers = []
        for visitor in self.visitors:
            method = getattr(visitor, name, None)
            # libcst's typed visitor base defines every name as a no-op stub.
            if method is not None and not getattr(method, "_is_no_op", False):
                handlers.append(method)
        return tuple(handlers)


def walk_batched(node: cst.CSTNode, visitors: Sequence[object]) -> None:
    """Walk ``node`` once for several visitors, as :func:`libcst.visit_batched` does.

    As there, each node's ``visit_<Type>`` methods run in the order of ``visitors``, then
    its children, then its ``leave_<Type>`` methods in the same order. Return values are
    ignored, so no visitor can skip a subtree for the others.
    """
    _walk(node, _Dispatch(visitors), may_skip=False)


def walk(node: cst.CSTNode, visitor: Visitor | cst.CSTVisitor) -> None:
    """Walk ``node`` with one read-only visitor, as ``node.visit(visitor)`` would.

    The visitor is a :class:`Visitor` or a libcst ``CSTVisitor``. A ``visit_<Type>``
    method that returns False skips the node's children, and the matching
    ``leave_<Type>`` still runs, as in libcst. A visitor that overrides ``on_visit`` or
    ``on_leave`` has them called for every node instead.
    """
    kind = type(visitor)
    base = Visitor if issubclass(kind, Visitor) else cst.CSTVisitor
    if kind.on_visit is not base.on_visit or kind.on_leave is not base.on_leave:
        _walk_generic(node, visitor)
    else:
        _walk(node, _Dispatch((visitor,)), may_skip=True)


def _walk(node: cst.CSTNode, dispatch: _Dispatch, *, may_skip: bool) -> None:
    handlers, skip = dispatch.handlers, dispatch.skip

    def visit(current: cst.CSTNode) -> None:
        on_visit, on_leave = handlers(type(current))
        descend = True
        for handler in on_visit:
            if handler(current) is False and may_skip:
                descend = False
        if descend:
            for child in _children(current, skip):
                visit(child)
        for handler in on_leave:
            handler(current)

    visit(node)


def _walk_generic(node: cst.CSTNode, visitor: Visitor | cst.CSTVisitor) -> None:
    # on_visit may look at any node, so nothing is skipped.
    if visitor.on_visit(node):
        for child in _children(node, _NOTHING):
            _walk_generic(child, visitor)
    visitor.on_leave(node)
