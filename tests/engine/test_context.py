"""Name resolution from the module's own imports."""

from __future__ import annotations

import libcst as cst
import pytest

from pytest_aiml.engine.context import ModuleContext, RepoContext


def _context(source: str) -> ModuleContext:
    return ModuleContext("m.py", cst.parse_module(source), RepoContext())


def _resolve(context: ModuleContext, expression: str) -> str | None:
    return context.qualified_name(cst.parse_expression(expression))


@pytest.mark.parametrize(
    ("source", "expression", "expected"),
    [
        ("import torch\n", "torch.load", "torch.load"),
        ("import torch as T\n", "T.load", "torch.load"),
        ("from torch import load\n", "load", "torch.load"),
        ("from torch import load as L\n", "L", "torch.load"),
        ("import torch.nn as nn\n", "nn.Linear", "torch.nn.Linear"),
        ("import os.path\n", "os.path.join", "os.path.join"),
        ("from torch import jit\n", "jit.load", "torch.jit.load"),
        ("", "eval", "builtins.eval"),
        ("", "model.predict", None),
        ("from . import helpers\n", "helpers.load", ".helpers.load"),
        ("from .io import load\n", "load", ".io.load"),
        ("try:\n    import ujson as json\nexcept ImportError:\n    import json\n", "json.loads", "json.loads"),
    ],
)
def test_qualified_name(source: str, expression: str, expected: str | None) -> None:
    assert _resolve(_context(source), expression) == expected


def test_call_result_is_not_resolved() -> None:
    context = _context("import torch\n")
    assert _resolve(context, "torch.nn.Linear(2, 2).load") is None


def test_module_constants_resolve() -> None:
    context = _context('MODEL = "/opt/m.pt"\nPREFIX = "a" "b"\nCOUNT = 3\n')
    assert context.string_value(cst.parse_expression("MODEL")) == "/opt/m.pt"
    assert context.string_value(cst.parse_expression("PREFIX")) == "ab"
    assert context.string_value(cst.parse_expression("COUNT")) is None


def test_rebound_constant_is_forgotten() -> None:
    context = _context('MODEL = "/opt/m.pt"\nMODEL = os.environ["MODEL"]\n')
    assert context.string_value(cst.parse_expression("MODEL")) is None


def test_imports_any_matches_submodules() -> None:
    context = _context("import torch.nn\nfrom flask import request\n")
    assert context.imports_any("torch")
    assert context.imports_any("flask")
    assert not context.imports_any("fastapi")
