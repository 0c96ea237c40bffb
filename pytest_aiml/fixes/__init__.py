"""Safe, mechanical fixes for the findings of some file rules (``--aiml-fix``, ``--aiml-diff``).

A rule offers a fix by naming a :class:`~pytest_aiml.fixes.fixer.Fixer` in its
``fixer`` attribute. The fix step runs the rules again on each file, keeps the
findings that no waiver or baseline settles, rewrites exactly the nodes behind them
with libcst (formatting and comments stay as they are) and writes the file back
atomically. This package belongs to the engine: it imports nothing from pytest.
"""

from pytest_aiml.fixes.apply import FileFix, every_finding, fix_source
from pytest_aiml.fixes.batch import FixReport, SkipFile, diff_text, fix_files, summary_lines
from pytest_aiml.fixes.fixer import FixContext, Fixer, ImportName, NoFix, Rewrite

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
