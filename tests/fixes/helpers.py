"""Running the fix step on a rule example, with the repository the example describes."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.dependencies import collect_pins
from pytest_aiml.engine.discovery import discover
from pytest_aiml.engine.rule import Example, FileRule
from pytest_aiml.fixes import FileFix, fix_source


def example_repo(example: Example) -> RepoContext:
    """Build the repository context of ``example.files`` (its pinned versions, mainly)."""
    with tempfile.TemporaryDirectory(prefix="aiml-fix-example-") as folder:
        root = Path(folder)
        for relative, content in example.files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        return RepoContext(pins=collect_pins(discover(root)))


def fix_example(rule: type[FileRule], example: Example, source: str | None = None) -> FileFix:
    """Fix ``source`` (the example's own by default) as ``example.path``, fixing every finding."""
    return fix_source(example.path, example.source if source is None else source, [rule], example_repo(example))
