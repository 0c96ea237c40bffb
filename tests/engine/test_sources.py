"""Reading source files: the size limits, the files that are not analysed, and notebook pre-filters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_aiml.engine import reads
from pytest_aiml.engine.discovery import RepoFiles
from pytest_aiml.engine.reads import NOTEBOOK_TEXT_LIMIT, TEXT_LIMIT, text_limit
from pytest_aiml.engine.registry import builtin_rules
from pytest_aiml.engine.runner import UnreadSource, applicable_rules, read_source

UNSAFE_LOAD = "import pickle\n\ndef load(path):\n    with open(path, 'rb') as stream:\n        return pickle.load(stream)\n"


def notebook(code: str, *, markdown: str = "", output_bytes: int = 0) -> str:
    """A notebook with one markdown cell and one code cell whose output is a base64 plot of ``output_bytes``."""
    output = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo" + "A" * output_bytes}, "metadata": {}}
    cells = [
        {"cell_type": "markdown", "source": markdown, "metadata": {}},
        {"cell_type": "code", "source": code, "metadata": {}, "outputs": [output], "execution_count": 1},
    ]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_text_limit_is_larger_for_notebooks() -> None:
    assert text_limit("src/train.py") == TEXT_LIMIT
    assert text_limit("notebooks/explore.ipynb") == NOTEBOOK_TEXT_LIMIT > TEXT_LIMIT


def test_oversized_source_names_size(tmp_path: Path) -> None:
    generated = tmp_path / "generated_pb2.py"
    generated.write_text("x = 1\n" * (TEXT_LIMIT // 6 + 1))
    with pytest.raises(UnreadSource, match=r"^2,000,004 bytes, over the 2,000,000-byte limit for Python sources$"):
        read_source(generated)


def test_binary_source_is_not_text(tmp_path: Path) -> None:
    packed = tmp_path / "packed.py"
    packed.write_bytes(b"x = 1\n\0\0\0")
    with pytest.raises(UnreadSource, match="contains NUL bytes"):
        read_source(packed)


def test_vanished_source_reads_as_none(tmp_path: Path) -> None:
    assert read_source(tmp_path / "gone.py") is None


def test_notebook_with_large_outputs_is_read(tmp_path: Path) -> None:
    text = notebook(UNSAFE_LOAD, output_bytes=3 * TEXT_LIMIT)
    path = tmp_path / "explore.ipynb"
    path.write_text(text)
    content, decoded = read_source(path) or (b"", "")
    assert len(content) > TEXT_LIMIT
    assert decoded == text
    (tmp_path / "generated.py").write_text("x = 1\n" * (TEXT_LIMIT // 6 + 1))
    repo = RepoFiles(tmp_path, ("explore.ipynb", "generated.py"))
    assert repo.read_text("explore.ipynb") == text
    assert repo.read_text("generated.py") is None


def test_notebook_prefilter_reads_code_cells_only() -> None:
    rules = [builtin_rules().get("AIML101")]
    # The fragment in the markdown and in the plot's base64 text matches nothing the rule checks.
    documented = notebook("x = 1\n", markdown="Never call `pickle.load(stream)` on a download.", output_bytes=10)
    assert applicable_rules("explore.ipynb", documented, rules) == []
    assert applicable_rules("explore.ipynb", notebook(UNSAFE_LOAD), rules) == rules


def test_broken_notebook_keeps_every_matching_rule() -> None:
    # Its analysis reports that it is not notebook JSON, which the pre-filter must not hide.
    rules = [builtin_rules().get("AIML101")]
    assert applicable_rules("explore.ipynb", '{"cells": [pickle.load(stream)', rules) == rules


def test_large_notebook_fix_clears_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reads, "NOTEBOOK_TEXT_LIMIT", 1_000)
    path = tmp_path / "explore.ipynb"
    path.write_text(notebook(UNSAFE_LOAD, output_bytes=2_000))
    with pytest.raises(UnreadSource) as raised:
        read_source(path)
    assert raised.value.not_analysed.reason.endswith("bytes, over the 1,000-byte limit for notebooks")
    assert raised.value.not_analysed.fix.startswith("clear its outputs (jupyter nbconvert --clear-output --inplace)")


def test_unreadable_source_fix_allows_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.py"
    path.write_text("x = 1\n")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(UnreadSource) as raised:
        read_source(path)
    assert raised.value.not_analysed.reason == "cannot be read: Permission denied"
    assert raised.value.not_analysed.fix.startswith("let the user who runs pytest read it")


def test_byte_order_mark_stripped(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_bytes(UNSAFE_LOAD.encode("utf-8-sig"))
    content, text = read_source(path) or (b"", "")
    assert content.startswith(b"\xef\xbb\xbf")
    assert text == UNSAFE_LOAD
