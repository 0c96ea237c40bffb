"""Views of a file: their values, their equivalence with what they replace, and the early cutoff they give."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_aiml.engine.discovery import RepoFiles
from pytest_aiml.engine.reads import Read
from pytest_aiml.engine.views import imported_names, quoted_names, view_digest, view_of


def test_imported_names_make_relative_imports_absolute() -> None:
    text = "import os, numpy as np\nfrom .model import load, Net\nfrom .. import config\nfrom ray import (serve,\n  data)\n"
    assert imported_names("pkg/sub/app.py", text) == {
        "os", "numpy", "pkg.sub.model", "pkg.sub.model.load", "pkg.sub.model.Net", "pkg", "pkg.config",
        "ray", "ray.serve", "ray.data",
    }


def test_quoted_names_after_quotes_and_slashes() -> None:
    names = quoted_names("tests/test_cli.py", "run(['python', 'scripts/train.py'])\nimport_module(\"pkg.train\")\n")
    assert names.contains("train.py")
    assert names.contains("python")
    assert names.contains("pkg.train", after_quote=True)
    assert not names.contains("train.py", after_quote=True), "train.py follows a slash, not a quote"
    assert not names.contains("scripts")


_TEXT = st.text(alphabet="ab./'\"\n #", max_size=40)
_NAME = st.text(alphabet="ab.", min_size=1, max_size=4)


@settings(max_examples=400, deadline=None)
@given(text=_TEXT, name=_NAME)
def test_quoted_names_match_the_replaced_search(text: str, name: str) -> None:
    names = quoted_names("tests/test_x.py", text)
    assert names.contains(name) == bool(re.search(rf"[\"'/]{re.escape(name)}[\"']", text))
    assert names.contains(name, after_quote=True) == bool(re.search(rf"[\"']{re.escape(name)}[\"']", text))


def _recorded(tmp_path: Path, name: str, view: str, text: str) -> tuple[RepoFiles, object]:
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(text)
    repo = RepoFiles(root=tmp_path, paths=(name,))
    with repo.reads.recording() as log:
        repo.read_view(name, view)
    return repo, log


#: For each view: a file, an edit that leaves the view as it is, and edits that change it.
EDITS = [
    pytest.param(
        "pkg/app.py", "imports", "from .model import load\n", "from .model import load\n# served by uvicorn\n",
        ["from .model import load\nimport fastapi\n"],
        id="imports",
    ),
    pytest.param(
        "train.py", "signals", "import torch\n", "import torch\n\n\ndef helper():\n    return 1\n",
        ["import torch\nimport mlflow\n"],
        id="signals",
    ),
    # The constants' lines are part of their view, because findings report them.
    pytest.param(
        "train.py", "preprocessing-constants", "FEATURE_MEANS = [0.5, 12.0]\nmodel.fit(x)\n",
        "FEATURE_MEANS = [0.5, 12.0]\nmodel.fit(x)  # one epoch\n\n\ndef helper():\n    return 1\n",
        ["FEATURE_MEANS = [0.5, 12.5]\nmodel.fit(x)\n", "# means of the training set\nFEATURE_MEANS = [0.5, 12.0]\nmodel.fit(x)\n"],
        id="preprocessing-constants",
    ),
]


@pytest.mark.parametrize(("name", "view", "original", "kept", "changed"), EDITS)
def test_view_ignores_edits_that_keep_it(
    tmp_path: Path, name: str, view: str, original: str, kept: str, changed: list[str]
) -> None:
    _, log = _recorded(tmp_path, name, view, original)
    (tmp_path / name).write_text(kept)
    assert log.unchanged(tmp_path)
    for text in changed:
        (tmp_path / name).write_text(text)
        assert not log.unchanged(tmp_path), text


def test_view_of_deleted_file_mismatches(tmp_path: Path) -> None:
    _, log = _recorded(tmp_path, "pkg/app.py", "imports", "import os\n")
    (tmp_path / "pkg/app.py").unlink()
    assert not log.unchanged(tmp_path)


def test_view_of_missing_file_until_created(tmp_path: Path) -> None:
    repo = RepoFiles(root=tmp_path, paths=())
    with repo.reads.recording() as log:
        assert repo.read_view("app.py", "imports") is None
    assert log.unchanged(tmp_path)
    (tmp_path / "app.py").write_text("import os\n")
    assert not log.unchanged(tmp_path)


def test_view_read_records_the_caller_value(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import os\n")
    repo = RepoFiles(root=tmp_path, paths=("app.py",))
    with repo.reads.recording() as log:
        value = repo.read_view("app.py", "imports", value_of=lambda content: imported_names("app.py", content.decode()))
    assert value == {"os"}
    [(read, recorded)] = log.fingerprints.items()
    assert read == Read("app.py", "view:imports")
    assert "|" in recorded


def test_constants_view_tells_values_apart() -> None:
    def digest(source: str) -> str:
        return view_digest("preprocessing-constants", view_of("preprocessing-constants", "train.py", source.encode()))

    assert digest("LABELS = ('a', 'b')\n") != digest("LABELS = ['a', 'b']\n")
    assert digest("MEANS = {'a': 1}\n") != digest("MEANS = {'a': 1.0}\n")


def test_constants_digest_same_across_processes() -> None:
    # A set of strings iterates in an order that changes with the hash seed of the process.
    code = (
        "from pytest_aiml.engine.views import view_digest, view_of\n"
        "value = view_of('preprocessing-constants', 'train.py', b\"LABELS = {'cat', 'dog', 'bird', 'fish', 'frog', 'owl'}\\n\")\n"
        "print(view_digest('preprocessing-constants', value))\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3", "4")
    }
    assert len(digests) == 1, digests


def test_constants_view_reads_notebook_code_cells() -> None:
    notebook = (
        '{"cells": [{"cell_type": "markdown", "source": ["SCALE = 1\\n"], "metadata": {}}, '
        '{"cell_type": "code", "source": ["SCALE = 255.0\\n"], "metadata": {}, "outputs": [], "execution_count": null}], '
        '"metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    [constant] = view_of("preprocessing-constants", "train.ipynb", notebook.encode()).values()
    assert (constant.name, constant.value, constant.line) == ("SCALE", 255.0, 1)
    assert view_of("preprocessing-constants", "broken.ipynb", b"{not json") == {}
