"""The fixers on cases beyond the rule examples: layouts, imports, and what they must leave alone."""

from __future__ import annotations

import textwrap

import pytest

from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.registry import builtin_rules
from pytest_aiml.fixes import fix_source
from pytest_aiml.fixes.codemods import TensorConstructorFixer

REGISTRY = builtin_rules()
AIML101 = REGISTRY.get("AIML101")


def _fix(source: str, rule=AIML101, path: str = "train.py"):
    return fix_source(path, textwrap.dedent(source), [rule], RepoContext())


@pytest.mark.parametrize(
    ("source", "fixed"),
    [
        ("import torch\nm = torch.load(p, map_location='cpu')\n", "import torch\nm = torch.load(p, map_location='cpu', weights_only=True)\n"),
        ("import torch\nm = torch.serialization.load(p)\n", "import torch\nm = torch.serialization.load(p, weights_only=True)\n"),
        ("import torch\nm = torch.load(p,\n               map_location=device)\n", "import torch\nm = torch.load(p,\n               map_location=device,\n               weights_only=True)\n"),
        ("import torch\nm = torch.load(\n    p  # the checkpoint\n)\n", "import torch\nm = torch.load(\n    p,  # the checkpoint\n    weights_only=True\n)\n"),
        ("import yaml as y\nc = y.load(s, y.FullLoader)\n", "import yaml as y\nc = y.safe_load(s)\n"),
        ("import yaml\nc = yaml.load(stream=s)\n", "import yaml\nc = yaml.safe_load(stream=s)\n"),
        ("from yaml import load as read\nc = read(s)\n", "from yaml import load as read, safe_load\nc = safe_load(s)\n"),
        ("from yaml import load, safe_load as sl\nc = load(s)\n", "from yaml import load, safe_load as sl\nc = sl(s)\n"),
        ("import yaml\nc = yaml.load_all(s)\n", "import yaml\nc = yaml.safe_load_all(s)\n"),
    ],
)
def test_unsafe_deserialization_fix(source: str, fixed: str) -> None:
    fix = _fix(source)
    assert fix.fixed == fixed
    assert len(fix.applied) == 1


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import torch\nm = torch.load(p, weights_only=False)\n", "weights_only=False) was chosen explicitly"),
        ("import torch\nimport dill\nm = torch.load(p, pickle_module=dill)\n", "pickle_module"),
        ("import numpy as np\na = np.load(p, allow_pickle=True)\n", "allow_pickle=True) is not rewritten"),
        ("import pickle\na = pickle.load(f)\n", "no mechanical fix"),
        ("import yaml\nc = yaml.unsafe_load(s)\n", "chosen explicitly"),
        ("import yaml\nc = yaml.load(s, Loader=yaml.UnsafeLoader)\n", "UnsafeLoader was chosen explicitly"),
        ("from yaml import load\n\ndef safe_load(s):\n    return s\n\nc = load(s)\n", "'safe_load' is already used"),
        ("import yaml\nc = yaml.load(\n    s,\n    Loader=yaml.Loader,  # legacy documents\n)\n", "a comment sits on the Loader argument"),
    ],
)
def test_unsafe_deserialization_left_alone(source: str, reason: str) -> None:
    fix = _fix(source)
    assert fix.fixed == fix.original
    [(finding, why)] = fix.unfixable
    assert finding.code == "AIML101"
    assert reason in why


def test_only_reported_calls_change() -> None:
    source = """\
        import torch
        import yaml

        a = torch.load(p)
        b = torch.jit.load(p)
        c = yaml.load(s, Loader=yaml.SafeLoader)
        d = torch.load(q, weights_only=True)
    """
    fix = _fix(source)
    assert fix.fixed.splitlines()[3] == "a = torch.load(p, weights_only=True)"
    assert fix.fixed.splitlines()[4:] == textwrap.dedent(source).splitlines()[4:]
    assert fix.spans == ((4, 4),)


def test_nested_findings_both_fixed() -> None:
    # The inner call is rewritten first; the outer rewrite must keep it.
    source = "import yaml, torch\nx = yaml.load(torch.load(p))\n"
    fix = _fix(source)
    assert fix.fixed == "import yaml, torch\nx = yaml.safe_load(torch.load(p, weights_only=True))\n"
    assert len(fix.applied) == 2


def test_import_added_to_each_binding_statement() -> None:
    source = """\
        from yaml import load

        def read(s):
            from yaml import load
            return load(s)
    """
    fix = _fix(source)
    assert fix.fixed == textwrap.dedent(
        """\
        from yaml import load, safe_load

        def read(s):
            from yaml import load, safe_load
            return safe_load(s)
        """
    )
    assert fix.spans == ((1, 1), (4, 4), (5, 5))


def test_select_keeps_findings_unfixed() -> None:
    source = "import torch\na = torch.load(p)\nb = torch.load(q)\n"
    fix = fix_source("train.py", source, [AIML101], RepoContext(), lambda rule, findings: [f for f in findings if f.line == 3])
    assert fix.fixed == "import torch\na = torch.load(p)\nb = torch.load(q, weights_only=True)\n"


def test_crlf_newlines_kept() -> None:
    fix = _fix("import torch\r\nstate = torch.load(p)\r\n")
    assert fix.fixed == "import torch\r\nstate = torch.load(p, weights_only=True)\r\n"


def test_notebooks_and_unparsable_files_unchanged() -> None:
    assert not fix_source("nb.ipynb", '{"cells": []}', [AIML101], RepoContext()).changed
    assert not fix_source("broken.py", "import torch\ntorch.load(p\n", [AIML101], RepoContext()).changed


def test_rules_without_fixer_ignored() -> None:
    rule = next(rule for rule in REGISTRY if getattr(rule, "fixer", "absent") is None)
    assert not fix_source("train.py", "import torch\nstate = torch.load(p)\n", [rule], RepoContext()).applied


@pytest.mark.parametrize(
    ("source", "fixed"),
    [
        ("import torch\nw = torch.Tensor([1, 2])\n", "import torch\nw = torch.tensor([1, 2], dtype=torch.float32)\n"),
        ("import torch\nw = torch.Tensor([[0.5, -1.0]])\n", "import torch\nw = torch.tensor([[0.5, -1.0]])\n"),
        ("import numpy as np\nimport torch\nw = torch.Tensor(np.array(x, dtype='float32'))\n", "import numpy as np\nimport torch\nw = torch.tensor(np.array(x, dtype='float32'))\n"),
        ("from torch import Tensor\nw = Tensor(frame.values)\n", "from torch import Tensor, tensor, float32\nw = tensor(frame.values, dtype=float32)\n"),
    ],
)
def test_tensor_constructor_keeps_dtype(source: str, fixed: str) -> None:
    rule = REGISTRY.get("AIML511")
    if rule.fixer is None:
        # Tested before the rule names its fixer, through a subclass that does.
        rule = type(rule.__name__, (rule,), {"fixer": TensorConstructorFixer})
    fix = _fix(source, rule=rule)
    assert fix.fixed == fixed


def test_zero_grad_keeps_comment_of_previous_argument() -> None:
    source = "model.zero_grad(\n    retain,  # why\n    set_to_none=False,\n)\n"
    fix = _fix(source, rule=REGISTRY.get("AIML512"))
    assert fix.fixed == "model.zero_grad(\n    retain,  # why\n)\n"
