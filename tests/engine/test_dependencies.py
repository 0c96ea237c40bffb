"""Reading pinned versions from dependency files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_aiml.engine.dependencies import collect_pins, may_run_below
from pytest_aiml.engine.discovery import discover


def _pins(tmp_path: Path, files: dict[str, str]):
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    return collect_pins(discover(tmp_path))


@pytest.mark.parametrize(
    ("files", "old_torch_possible"),
    [
        ({}, True),
        ({"requirements.txt": "torch\n"}, True),
        ({"requirements.txt": "torch==2.1.2\n"}, True),
        ({"requirements.txt": "torch==2.6.0\n"}, False),
        ({"requirements.txt": "torch>=2.6,<3\n"}, False),
        ({"requirements.txt": "torch>=2.0\n"}, True),
        ({"requirements.txt": "torch>=2.0 ; python_version > '3.8'  # cpu\n"}, True),
        ({"pyproject.toml": '[project]\ndependencies = ["torch>=2.7"]\n'}, False),
        ({"pyproject.toml": '[tool.poetry.dependencies]\ntorch = "^2.4"\n'}, True),
        ({"pyproject.toml": '[project]\ndependencies = ["torch>=2.0"]\n', "poetry.lock": '[[package]]\nname = "torch"\nversion = "2.7.1"\n'}, False),
        ({"environment.yml": "dependencies:\n  - pytorch=2.6.0\n  - pip:\n    - torch==2.2.0\n"}, True),
    ],
)
def test_may_run_torch_below_2_6(tmp_path: Path, files: dict[str, str], old_torch_possible: bool) -> None:
    assert may_run_below(_pins(tmp_path, files), "torch", "2.6") is old_torch_possible


def test_invalid_pyproject_is_skipped(tmp_path: Path) -> None:
    pins = _pins(tmp_path, {"pyproject.toml": "[project\n", "requirements.txt": "Torch==2.6.0\n"})
    assert [pin.specifier for pin in pins["torch"]] == ["==2.6.0"]
