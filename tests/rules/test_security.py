"""AIML101 on torch.load: the message names the dependency files that admit torch < 2.6."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.dependencies import collect_pins
from pytest_aiml.engine.discovery import discover
from pytest_aiml.engine.runner import analyze_text, screen
from pytest_aiml.rules.security import UnsafeDeserialization

LOAD = "import torch\n\nstate = torch.load('weights.pt')\n"


def _messages(tmp_path: Path, files: dict[str, str]) -> list[str]:
    for relative, content in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(content)
    context = RepoContext(pins=collect_pins(discover(tmp_path)))
    screening = screen("src/train.py", LOAD, [UnsafeDeserialization])
    analysis = analyze_text("src/train.py", LOAD, screening.rules, context, screened=True)
    return [finding.message for finding in analysis.findings]


@pytest.mark.parametrize(
    ("files", "ending"),
    [
        ({}, "and no dependency file that applies to this file requires torch >= 2.6"),
        ({"requirements/typing.txt": "torch==2.9.1\n", "requirements/base.txt": "torch>=2.1\n"}, "which requirements/base.txt admits"),
        (
            {"requirements/base.txt": "torch>=2.1\n", "requirements/docker.txt": "torch==2.4.0\n"},
            "which requirements/base.txt and requirements/docker.txt admit",
        ),
    ],
    ids=["no-pins", "one-file", "two-files"],
)
def test_message_names_admitting_files(tmp_path: Path, files: dict[str, str], ending: str) -> None:
    [message] = _messages(tmp_path, files)
    assert message == f"torch.load() without weights_only=True unpickles the checkpoint on torch < 2.6, {ending}"


def test_recent_torch_everywhere_no_finding(tmp_path: Path) -> None:
    files = {"requirements/typing.txt": "torch==2.9.1\n", "requirements/base.txt": "torch>=2.6\n"}
    assert _messages(tmp_path, files) == []
