"""Views computed during a cold scan: equal to those computed on read, taken only for the same bytes."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from pytest_aiml.engine.discovery import FileKind, RepoFiles, discover
from pytest_aiml.engine.inventory import build_inventory, views_ahead
from pytest_aiml.engine.registry import builtin_rules
from pytest_aiml.engine.repository import run_repository_rules
from pytest_aiml.engine.signals import file_signals
from pytest_aiml.engine.views import ComputedViews, view_of

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SAMPLE_REPOS = sorted(path for path in FIXTURES.iterdir() if path.is_dir())

TRAIN = "import torch\nFEATURE_MEANS = [0.5, 12.0]\n\n\ndef fit(loss, optimizer):\n    loss.backward()\n    optimizer.step()\n"
SERVE = "from fastapi import FastAPI\nFEATURE_MEANS = [0.5, 12.5]\napp = FastAPI()\n"


def _ahead(path: str, text: str) -> dict[str, Any]:
    return views_ahead(path, text, file_signals(path, text))


class _CountingViews(ComputedViews):
    """Computed views that count, by view name, the reads they returned a value for and those they missed."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: dict[str, int] = {}
        self.missed: dict[str, list[str]] = {}

    def get(self, path: str, name: str, content: bytes) -> tuple[bool, Any]:
        known, value = super().get(path, name, content)
        if known:
            self.taken[name] = self.taken.get(name, 0) + 1
        else:
            self.missed.setdefault(name, []).append(path)
        return known, value


def test_views_ahead_equal_views_computed_on_read() -> None:
    for path, text in (("train.py", TRAIN), ("app/serve.py", SERVE), ("pkg/utils.py", "from .model import load\n")):
        for name, value in _ahead(path, text).items():
            assert value == view_of(name, path, text.encode()), (path, name)


def test_constants_ahead_for_training_modules_only() -> None:
    assert "preprocessing-constants" in _ahead("pkg/loop.py", TRAIN), "training signals"
    assert "preprocessing-constants" in _ahead("scripts/Train_Model.py", "MEANS = [1]\n"), "a training script's name"
    assert "preprocessing-constants" not in _ahead("app/serve.py", SERVE), "serving modules are read when needed"
    assert "preprocessing-constants" not in _ahead("pkg/utils.py", "MEANS = [1]\n")
    assert "preprocessing-constants" not in _ahead("tests/test_train.py", TRAIN), "nor tests"
    assert set(_ahead("notebooks/explore.ipynb", "not json")) == set(), "an unreadable notebook has no views"


def test_computed_view_only_for_the_same_bytes() -> None:
    views = ComputedViews()
    views.add("train.py", TRAIN.encode(), {"imports": frozenset({"torch"})})
    assert views.get("train.py", "imports", TRAIN.encode()) == (True, frozenset({"torch"}))
    assert views.get("train.py", "imports", (TRAIN + "# edited\n").encode()) == (False, None)
    assert views.get("train.py", "preprocessing-constants", TRAIN.encode()) == (False, None)
    assert views.get("serve.py", "imports", TRAIN.encode()) == (False, None)


def test_pickled_computed_views_are_empty() -> None:
    views = ComputedViews()
    views.add("train.py", TRAIN.encode(), {"imports": frozenset({"torch"})})
    assert pickle.loads(pickle.dumps(views)).get("train.py", "imports", TRAIN.encode()) == (False, None)


def test_read_view_takes_computed_view(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(TRAIN)
    marked = RepoFiles(root=tmp_path, paths=("train.py",))
    # A value no file could give, so the test can tell where the read took it from.
    marked.computed_views.add("train.py", TRAIN.encode(), {"imports": frozenset({"computed-ahead"})})
    assert marked.read_view("train.py", "imports") == {"computed-ahead"}
    # With the value the file gives, the read records what a read that computes it records.
    computed = RepoFiles(root=tmp_path, paths=("train.py",))
    computed.computed_views.add("train.py", TRAIN.encode(), _ahead("train.py", TRAIN))
    plain = RepoFiles(root=tmp_path, paths=("train.py",))
    with computed.reads.recording() as computed_log, plain.reads.recording() as plain_log:
        assert computed.read_view("train.py", "imports") == plain.read_view("train.py", "imports") == {"torch"}
    assert computed_log.fingerprints == plain_log.fingerprints
    (tmp_path / "train.py").write_text(TRAIN.replace("import torch", "import jax"))
    assert marked.read_view("train.py", "imports") == {"jax"}, "edited bytes are read again"


@pytest.mark.parametrize("root", SAMPLE_REPOS, ids=lambda path: path.name)
def test_repository_rules_read_computed_views(root: Path) -> None:
    # Guards the guess of views_ahead against the rules: a rule that starts reading a view
    # of other files (say, constants of a new kind of module) shows up here as a miss.
    found = discover(root)
    views = _CountingViews()
    repo = RepoFiles(root=found.root, paths=found.paths, computed_views=views)
    for path in repo.of_kind(FileKind.PYTHON, FileKind.NOTEBOOK):
        content = (root / path).read_bytes()
        views.add(path, content, _ahead(path, content.decode("utf-8-sig", errors="replace")))
    rules = builtin_rules().repo_rules()
    with_views = run_repository_rules(rules, build_inventory(repo), {})
    assert views.taken.get("imports")
    assert views.taken.get("preprocessing-constants")
    assert "imports" not in views.missed
    # Serving modules' constants are computed when read, and a training module's never are.
    inventory = build_inventory(discover(root))
    training = {*inventory.training_files, *inventory.training_scripts}
    assert not training.intersection(views.missed.get("preprocessing-constants", ()))
    without_views = run_repository_rules(rules, build_inventory(discover(root)), {})
    assert with_views.findings == without_views.findings
    assert with_views.reads.fingerprints == without_views.reads.fingerprints
