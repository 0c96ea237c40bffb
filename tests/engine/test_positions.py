"""Node positions: the full ranges the fix step needs, and the starts a finding needs."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from pytest_aiml.engine.positions import node_positions, start_positions
from tests.engine.test_walk import EVERY_CONSTRUCT


def _expected(module: cst.Module) -> dict:
    return dict(MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider))


def _nodes(module: cst.Module) -> list[cst.CSTNode]:
    found, pending = [], [module]
    while pending:
        node = pending.pop()
        found.append(node)
        pending.extend(node.children)
    return found


def test_node_positions_match_the_metadata_wrapper():
    module = cst.parse_module(EVERY_CONSTRUCT)
    assert dict(node_positions(module)) == _expected(module)


def test_every_start_matches_the_position_provider():
    module = cst.parse_module(EVERY_CONSTRUCT)
    expected = _expected(module)
    starts = start_positions(module, _nodes(module))
    assert starts == {node: position.start for node, position in expected.items()}


def test_start_positions_few_nodes():
    module = cst.parse_module(EVERY_CONSTRUCT)
    expected = _expected(module)
    blocks = [node for node in _nodes(module) if isinstance(node, cst.IndentedBlock)][:3]
    calls = [node for node in _nodes(module) if isinstance(node, cst.Call)][:5]
    decorators = [node for node in _nodes(module) if isinstance(node, cst.Decorator)]
    targets = [*blocks, *calls, *decorators]
    starts = start_positions(module, targets)
    # An indented block starts where its first statement does, so that statement is located too.
    assert {node: starts[node] for node in targets} == {node: expected[node].start for node in targets}


def test_start_positions_foreign_node():
    module = cst.parse_module("x = 1\n")
    stranger = cst.parse_expression("y")
    assert start_positions(module, [stranger]) == {}
