"""The ``ast`` candidate checks that keep files away from libcst when no rule can report on them."""

from __future__ import annotations

import ast

from pytest_aiml.engine.ast_facts import AstFacts, argument, unpacks_kwargs
from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.runner import analyze_text
from pytest_aiml.rules.security import UnsafeDeserialization
from pytest_aiml.rules.training import GradientsNotCleared


def _facts(source: str) -> AstFacts:
    return AstFacts(ast.parse(source))


def test_calls_resolve_aliases():
    facts = _facts("import torch as T\nfrom pickle import loads as L\nT.serialization.load(p)\nL(b)\njson.load(f)\n")
    assert "torch.serialization.load" in facts.calls
    assert "pickle.loads" in facts.calls
    assert not any(name.startswith("json") for name in facts.calls)


def test_loop_must_call_every_group():
    hooks = "class M:\n    def backward(self, loss):\n        loss.backward()\n    def optimizer_step(self, opt):\n        opt.step()\n"
    loop = "for x in data:\n    loss(x).backward()\n    if ready:\n        opt.step()\n"
    assert not _facts(hooks).loops_calling(frozenset({"backward"}), frozenset({"step"}))
    assert _facts(loop).loops_calling(frozenset({"backward"}), frozenset({"step"}))


def test_json_load_is_no_candidate_for_unsafe_loads():
    assert not UnsafeDeserialization.candidate(_facts("import json\nconfig = json.load(open('c.json'))\n"))
    assert UnsafeDeserialization.candidate(_facts("import torch\nstate = torch.load('m.pt')\n"))


def test_ruled_out_file_keeps_its_rule_list():
    hooks = "import torch\n\nclass M:\n    def backward(self, loss):\n        loss.backward()\n\n    def optimizer_step(self, opt):\n        opt.step()\n"
    analysis = analyze_text("hooks.py", hooks, [GradientsNotCleared], RepoContext())
    assert analysis.rules == ("AIML501",)
    assert analysis.findings == ()
    assert analysis.failure is None


def test_syntax_error_still_reported_by_libcst():
    analysis = analyze_text("broken.py", "import torch\nfor x in y\n    loss.backward(); opt.step()\n", [GradientsNotCleared], RepoContext())
    assert analysis.failure is not None
    assert analysis.failure.line == 2


def test_safe_loader_keywords_are_no_candidates():
    safe = "import numpy as np\nimport torch\n\nstate = torch.load('m.pt', weights_only=True)\narray = np.load('a.npy')\n"
    assert not UnsafeDeserialization.candidate(_facts(safe))
    assert UnsafeDeserialization.candidate(_facts(safe + "legacy = torch.load('old.pt')\n"))
    assert UnsafeDeserialization.candidate(_facts(safe + "objects = np.load('o.npy', allow_pickle=True)\n"))


def test_resolutions_cover_every_import_of_a_name():
    source = (
        "import numpy as np\nfrom .compat import json\nimport ujson as json\n\n"
        "def jax_path():\n    import jax.numpy as np\n    from flax import linen\n"
    )
    facts = _facts(source)
    # ModuleContext resolves ``np`` through whichever import its traversal saw last.
    assert facts.resolutions(ast.parse("np.random.rand").body[0].value) == {"numpy.random.rand", "jax.numpy.random.rand"}
    # A relative import binds the name too, and shadows the other import there.
    assert facts.resolutions(ast.parse("json.loads").body[0].value) == {".compat.json.loads", "ujson.loads"}
    # Imported only inside a function: unresolved until the traversal reaches the import.
    assert facts.resolutions(ast.parse("linen.Dense").body[0].value) == {"flax.linen.Dense", None}
    assert facts.resolutions(ast.parse("local.attr").body[0].value) == {None}
    assert facts.resolutions(ast.parse("f().attr").body[0].value) == {None}
    assert facts.may_import("jax")
    assert not facts.may_import("json")


def test_argument_finds_keywords_then_positions_before_star_args():
    call = ast.parse("DataLoader(ds, 8, *rest, pin_memory=True)").body[0].value
    assert isinstance(argument(call, 7, "pin_memory"), ast.Constant)
    assert argument(call, 1, "batch_size").value == 8
    assert argument(call, 2, None) is None
    assert unpacks_kwargs(ast.parse("f(**options)").body[0].value)
