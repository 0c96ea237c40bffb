"""Safe, mechanical fixes for the findings of some file rules (``--aiml-fix``, ``--aiml-diff``).

A rule offers a fix by naming a :class:`~pytest_aiml.fixes.fixer.Fixer` in its
``fixer`` attribute. The fix step runs the rules again on each file, keeps the
findings that no waiver or baseline settles, rewrites exactly the nodes behind them
with libcst (formatting and comments stay as they are) and writes the file back
atomically. This package belongs to the engine: it imports nothing from pytest.

The rules import this package for their fixers, and every run imports the rules, while
only a run that fixes needs libcst's transformers. So the names below are imported from
their modules when they are first read.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_aiml.fixes.apply import FileFix, every_finding, fix_source
    from pytest_aiml.fixes.batch import FixReport, SkipFile, diff_text, fix_files, summary_lines
    from pytest_aiml.fixes.fixer import FixContext, Fixer, ImportName, NoFix, Rewrite

_MODULES = {
    "FileFix": "apply", "every_finding": "apply", "fix_source": "apply",
    "FixReport": "batch", "SkipFile": "batch", "diff_text": "batch", "fix_files": "batch", "summary_lines": "batch",
    "FixContext": "fixer", "Fixer": "fixer", "ImportName": "fixer", "NoFix": "fixer", "Rewrite": "fixer",
}

__all__ = [
    "FileFix",
    "FixContext",
    "FixReport",
    "Fixer",
    "ImportName",
    "NoFix",
    "Rewrite",
    "SkipFile",
    "diff_text",
    "every_finding",
    "fix_files",
    "fix_source",
    "summary_lines",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
