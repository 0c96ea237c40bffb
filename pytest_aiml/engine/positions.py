"""Line and column positions of libcst nodes, computed only for the files and nodes that need them.

libcst computes a node's position only by generating the module's code and counting
lines and columns as it goes. Its ``PositionProvider`` records a range for every node of the
module, which took longer than parsing on files with findings. A finding needs only the
start of its node and of its statement, so :func:`start_positions` records those alone
and stops generating code once it has them all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import CodePosition, CodeRange, PositionProvider
from libcst.metadata.position_provider import WhitespaceInclusivePositionProvidingCodegenState

__all__ = ["node_positions", "start_positions"]


def node_positions(module: cst.Module) -> Mapping[cst.CSTNode, CodeRange]:
    """Compute the range of every node, keeping node identity so pending findings still match.

    The provider runs on its own: resolving it through a ``MetadataWrapper`` also walks
    the whole tree once more for batchable providers, even when there are none.
    """
    provider = PositionProvider()
    provider._gen_impl(module)
    return provider._computed


def start_positions(module: cst.Module, nodes: Collection[cst.CSTNode]) -> dict[cst.CSTNode, CodePosition]:
    """Return where each of ``nodes`` starts, as ``PositionProvider`` would give it.

    Nodes that are not in the module are left out of the result.
    """
    state = _StartRecorder(default_indent=module.default_indent, default_newline=module.default_newline, provider=None)
    state.targets = {id(node): node for node in nodes}
    try:
        module._codegen(state)
    except _AllFound:
        pass
    return {state.targets[key]: state.start_of(key) for key in state.starts if key in state.targets}


class _AllFound(Exception):
    """Raised to stop generating code once every target node has its start."""


@dataclass
class _StartRecorder(WhitespaceInclusivePositionProvidingCodegenState):
    # The parent state counts lines and columns token by token. This one records the
    # start of the target nodes only, with the rules of ``PositionProvider``: the start of
    # the syntactic part of a node when the node marks one. Otherwise it is the start of
    # all the code the node generates, leading whitespace included.
    targets: dict[int, cst.CSTNode] = field(default_factory=dict)
    starts: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: Starts taken from a child: an indented block starts where its first statement does.
    borrowed: dict[int, int] = field(default_factory=dict)
    _opened: dict[int, tuple[int, int]] = field(default_factory=dict)
    _syntactic: set[int] = field(default_factory=set)
    _done: int = 0

    def before_codegen(self, node: cst.CSTNode) -> None:
        if id(node) in self.targets:
            self._opened[id(node)] = (self.line, self.column)

    def after_codegen(self, node: cst.CSTNode) -> None:
        key = id(node)
        if key not in self.targets:
            return
        opened = self._opened.pop(key, None)
        if key not in self._syntactic and opened is not None:
            self.starts[key] = opened
        self._done += 1
        if self._done >= len(self.targets) and not self.borrowed:
            raise _AllFound

    @contextmanager
    def record_syntactic_position(
        self, node: cst.CSTNode, *, start_node: cst.CSTNode | None = None, end_node: cst.CSTNode | None = None
    ) -> Iterator[None]:
        key = id(node)
        if key in self.targets:
            self._syntactic.add(key)
            if start_node is None:
                self.starts[key] = (self.line, self.column)
            else:
                self.targets.setdefault(id(start_node), start_node)
                self.borrowed[key] = id(start_node)
        yield
        if key in self.borrowed and self.borrowed[key] in self.starts:
            self.starts[key] = self.starts[self.borrowed.pop(key)]

    def start_of(self, key: int) -> CodePosition:
        line, column = self.starts[key]
        return CodePosition(line, column)
