"""The read-only walk must visit exactly what libcst's own traversal visits, in the same order."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

import pytest_aiml
from pytest_aiml.engine.walk import Visitor, children, walk, walk_batched

#: Most kinds of statement and expression, with comments and odd whitespace among them.
EVERY_CONSTRUCT = '''\
"""Module docstring."""  # trailing comment
from __future__ import annotations

import os, sys as system
from typing import (  # a comment inside parentheses
    Any,
    Optional as Opt,
)


@decorator(arg=1)
@other
class Model(Base, metaclass=Meta):
    """Class docstring."""

    field: int = 3

    async def forward(self, x: "Tensor", *args: Any, key=None, **kwargs) -> Opt[int]:
        async with lock as held, other():
            async for item in stream:
                await item
        y = [i * 2 for i in range(10) if i % 2 if i > 1]
        z = {k: v for k, v in zip(a, b)}
        s = {i for i in y}
        g = (i for i in y)
        lam = lambda a, /, b=2, *c, d, **e: a + b
        w = x if x is not None else -y[1:2:3, ...]
        del w
        return (yield from gen()) or (yield)


def function(a, b=2, *, c):
    global counter
    counter += 1

    def inner():
        nonlocal a
        a @= b
    try:
        raise ValueError("bad") from None
    except (ValueError, TypeError) as error:
        pass
    else:
        assert a, f"{a!r:>{b}} and {c=}"
    finally:
        print(not a and b or c, a < b <= c != d, ~a << 2 >> 1 | 3 & 4 ^ 5)
    try:
        pass
    except* OSError:
        pass
    while True:
        if (n := len(a)) > 10:
            break
        elif n:
            continue
        else:
            ...
    with open("f") as handle:
        data = handle.read()
    match command:
        case {"x": 1, **rest}:
            pass
        case [first, *others] if first:
            pass
        case Point(x=0, y=0) | None:
            pass
        case _:
            pass
    x: list[int]
    a, *b = c = d = 1, 2
    print("implicit" "concatenation", b"bytes", rb"raw", 1_000, 0x1F, 1.5j, not_a_key["x"]["y"])
    return type(a).__name__


type Alias[T] = list[T]


def generic[T: int, *Ts, **P](x: T) -> T:
    return x
'''


class _Recorder(cst.CSTVisitor):
    """Records every visit and leave, as libcst's traversal makes them."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, int]] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.events.append(("visit", id(node)))
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.events.append(("leave", id(original_node)))


class _NamedRecorder:
    """Records every ``visit_<Type>`` and ``leave_<Type>`` call, as a rule with a handler for every node would receive them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def __getattr__(self, name: str):
        if name.startswith(("visit_", "leave_")):
            return lambda node: self.events.append((name.split("_", 1)[0], id(node)))
        raise AttributeError(name)


def _sources() -> list[tuple[str, str]]:
    """The construct sample, the engine's own modules and the sample repositories' code that parses."""
    engine = Path(pytest_aiml.__file__).parent / "engine"
    files = [*sorted(engine.glob("*.py")), *sorted(Path(__file__).parents[2].joinpath("fixtures").rglob("*.py"))]
    sources = [("every_construct.py", EVERY_CONSTRUCT)]
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            cst.parse_module(text)
        except cst.ParserSyntaxError:
            continue  # the sample repositories hold deliberately broken files
        sources.append((str(path), text))
    return sources


def test_every_construct_parses():
    assert cst.parse_module(EVERY_CONSTRUCT).code == EVERY_CONSTRUCT


@pytest.mark.parametrize(("name", "source"), _sources(), ids=lambda value: Path(value).name if "/" in value else None)
def test_walk_matches_libcst_order(name: str, source: str):
    module = cst.parse_module(source)
    expected = _Recorder()
    module.visit(expected)
    walked = _NamedRecorder()
    walk_batched(module, [walked])
    assert walked.events == expected.events


def test_children_match_libcst():
    module = cst.parse_module(EVERY_CONSTRUCT)
    pending = [module]
    while pending:
        node = pending.pop()
        assert children(node) == list(node.children)
        pending.extend(node.children)


def test_children_without_whitespace_keep_code_nodes():
    call = cst.parse_expression("f( a , # note\n b )")
    assert [type(child).__name__ for child in children(call, whitespace=False)] == ["Name", "Arg", "Arg"]


class _CallsMethods:
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.left: list[str] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return node.name.value != "skipped"

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.left.append(original_node.name.value)

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(cst.Module([]).code_for_node(node.func))


class _Calls(_CallsMethods, cst.CSTVisitor):
    pass


class _OwnCalls(_CallsMethods, Visitor):
    pass


class _StatementCalls(_OwnCalls):
    """Overrides ``on_visit`` and ``on_leave`` and hands each node on, as a rule's statement tracker does."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.depth += 1
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        self.depth -= 1


@pytest.mark.parametrize("kind", [_Calls, _OwnCalls, _StatementCalls])
def test_walk_skips_children_when_visit_returns_false(kind: type[_CallsMethods]):
    module = cst.parse_module("def kept():\n    a()\n\ndef skipped():\n    b()\n\nc()\n")
    ours, theirs = kind(), _Calls()
    walk(module, ours)
    module.visit(theirs)
    assert ours.calls == theirs.calls == ["a", "c"]
    assert ours.left == theirs.left == ["kept", "skipped"]
    assert getattr(ours, "depth", 0) == 0


class _Comments(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.comments: list[str] = []

    def visit_Comment(self, node: cst.Comment) -> None:
        self.comments.append(node.value)


def test_walk_reaches_comments_when_a_visitor_reads_them():
    module = cst.parse_module(EVERY_CONSTRUCT)
    ours, theirs = _Comments(), _Comments()
    walk_batched(module, [ours])
    module.visit(theirs)
    assert ours.comments == theirs.comments == ["# trailing comment", "# a comment inside parentheses"]


class _AllNodes(cst.CSTVisitor):
    """Overrides ``on_visit``, so the walk must offer it every node, whitespace included."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: list[str] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.kinds.append(type(node).__name__)
        return not isinstance(node, cst.Lambda)


def test_walk_overridden_on_visit():
    module = cst.parse_module(EVERY_CONSTRUCT)
    ours, theirs = _AllNodes(), _AllNodes()
    walk(module, ours)
    module.visit(theirs)
    assert ours.kinds == theirs.kinds
    assert "SimpleWhitespace" in ours.kinds
