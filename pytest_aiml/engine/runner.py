"""One parse and one batched traversal per file, for every file rule at once."""

from __future__ import annotations

import ast
import logging
import re
import time
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_aiml.engine.ast_facts import AstFacts
from pytest_aiml.engine.context import ModuleContext, PendingFinding, RepoContext
from pytest_aiml.engine.discovery import is_test_path
from pytest_aiml.engine.findings import Finding, ParseFailure
from pytest_aiml.engine.notebooks import NotebookSource, notebook_source
from pytest_aiml.engine.reads import is_binary, read_text_bytes, text_limit
from pytest_aiml.engine.rule import FileRule
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.walk import walk_batched

if TYPE_CHECKING:
    from libcst.metadata import CodeRange

log = logging.getLogger("pytest_aiml.runner")


@dataclass(frozen=True, slots=True)
class FileAnalysis:
    """The outcome of analysing one file: its findings, or why it could not be parsed."""

    path: str
    rules: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    failure: ParseFailure | None = None
    #: Seconds spent, by ``"parse"`` and by rule code, when the analysis was profiled; never cached.
    timings: tuple[tuple[str, float], ...] = ()

    def for_rule(self, code: str) -> tuple[Finding, ...]:
        return tuple(finding for finding in self.findings if finding.code == code)


@dataclass
class RuleTimes:
    """Seconds and file counts per rule (and for parsing), summed over profiled analyses."""

    seconds: dict[str, float] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)

    def add(self, analysis: FileAnalysis) -> None:
        for code, seconds in analysis.timings:
            self.seconds[code] = self.seconds.get(code, 0.0) + seconds
            self.files[code] = self.files.get(code, 0) + 1

    def merge(self, other: RuleTimes) -> None:
        """Add the times of analyses made elsewhere (a pytest-xdist worker's)."""
        for code, seconds in other.seconds.items():
            self.seconds[code] = self.seconds.get(code, 0.0) + seconds
            self.files[code] = self.files.get(code, 0) + other.files.get(code, 0)

    def lines(self) -> list[str]:
        """Render one line per rule, slowest first: ``AIML101  0.52s  80 files``."""
        ordered = sorted(self.seconds.items(), key=lambda item: (-item[1], item[0]))
        return [
            f"{code:<8} {seconds:7.2f}s {self.files[code]:6d} {'file' if self.files[code] == 1 else 'files'}"
            for code, seconds in ordered
        ]


_STATEMENT_NAMES = (
    "SimpleStatementLine", "If", "For", "While", "With", "Try", "TryStar", "FunctionDef", "ClassDef", "Match",
)


class _ContextTracker:
    """Keeps the module context current: imports met inside functions, and the statement stack.

    It runs first in the batch, so rules see the state of the node they visit.
    """

    def __init__(self, context: ModuleContext) -> None:
        self.context = context

    def visit_Import(self, node: cst.Import) -> None:
        self.context.add_import(node)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.context.add_import(node)



def _push_statement(self: _ContextTracker, node: cst.CSTNode) -> None:
    self.context.statements.append(node)


def _pop_statement(self: _ContextTracker, original_node: cst.CSTNode) -> None:
    self.context.statements.pop()


# The walk finds handlers by their names, as libcst's batched visitor does, so each
# statement type gets its own named copy of the two functions above.
for _name in _STATEMENT_NAMES:
    for _prefix, _function in (("visit_", _push_statement), ("leave_", _pop_statement)):
        _handler = types.FunctionType(_function.__code__, _function.__globals__, _prefix + _name)
        setattr(_ContextTracker, _prefix + _name, _handler)


@dataclass(frozen=True, slots=True)
class FilePlan:
    """The collection-time view of a source file: the rules that apply, and whether it parses."""

    rules: tuple[str, ...]
    failure: ParseFailure | None = None
    #: The reason the file is not analysed at all (:class:`UnreadSource`). The file then has no rules.
    unread: NotAnalysed | None = None


@dataclass(frozen=True, slots=True)
class NotAnalysed:
    """The reason a source file is not analysed, and the fix its owner can apply."""

    reason: str
    fix: str


_EXCLUDE = "add it to 'exclude' in [tool.pytest-aiml]"


class UnreadSource(Exception):
    """A source file that is not analysed: over its size limit, binary or unreadable."""

    def __init__(self, not_analysed: NotAnalysed) -> None:
        super().__init__(not_analysed.reason)
        self.not_analysed = not_analysed


def read_source(path: Path) -> tuple[bytes, str] | None:
    """Read a source file as bytes and text; None when it no longer exists.

    Raises :class:`UnreadSource` for a file that exists but is not analysed. Files over
    ``reads.text_limit`` are mostly generated code or vendored bundles, so reading them
    as source would make one file the cost of a whole scan.
    """
    limit = text_limit(path.name)
    try:
        size, content = read_text_bytes(path, limit)
    except FileNotFoundError:
        return None
    except OSError as error:
        reason = f"cannot be read: {error.strerror or error}"
        raise UnreadSource(NotAnalysed(reason, f"let the user who runs pytest read it, or {_EXCLUDE}")) from None
    if content is None and path.suffix == ".ipynb":
        reason = f"{size:,} bytes, over the {limit:,}-byte limit for notebooks"
        raise UnreadSource(NotAnalysed(reason, f"clear its outputs (jupyter nbconvert --clear-output --inplace), or {_EXCLUDE}"))
    if content is None:
        reason = f"{size:,} bytes, over the {limit:,}-byte limit for Python sources"
        fix = f"if it is generated or vendored code, {_EXCLUDE}; otherwise split it into smaller modules"
        raise UnreadSource(NotAnalysed(reason, fix))
    if is_binary(content):
        raise UnreadSource(NotAnalysed("contains NUL bytes, so it is not text", f"if it is not Python source, {_EXCLUDE}"))
    return content, content.decode("utf-8-sig", errors="replace")


@dataclass(frozen=True, slots=True)
class Screening:
    """The rules that can report on a file, decided without libcst, and its syntax error if any."""

    rules: tuple[type[FileRule], ...]
    #: The syntax error CPython found, if any. ``rules`` then keeps every rule the pre-filters let through.
    failure: ParseFailure | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(rule.code for rule in self.rules)


def screen(path: str, text: str, rules: Sequence[type[FileRule]], *, check_syntax: bool = True) -> Screening:
    """Decide which rules can report on a file: the text pre-filters, then the ``ast`` candidate checks.

    The file is parsed with CPython's ``ast``, far cheaper than libcst, and only when a
    pre-filter matched. A rule whose candidate check fails could not report anything
    on the file, so the file gets no item for it and libcst never runs it. Without
    ``check_syntax``, a file whose rules have no candidate check is not parsed here: a
    caller that goes on to :func:`analyze_text` learns of a syntax error from libcst.
    """
    notebook, source, notebook_failure = _python_source(path, text)
    matched = _prefiltered(path, source, rules)
    if not matched:
        return Screening(())
    if not check_syntax and not any(rule.has_candidate_check for rule in matched):
        return Screening(tuple(matched))
    if notebook_failure is not None:
        return Screening(tuple(matched), notebook_failure)
    tree, failure = _parse_ast(path, source, notebook)
    if tree is None and _libcst_parses(source):
        # Syntax newer than this interpreter's (``type Vector = list[float]`` under Python
        # 3.11): libcst reads it, so every rule the pre-filters let through stays.
        return Screening(tuple(matched))
    if tree is None:
        return Screening(tuple(matched), failure)
    if not any(rule.has_candidate_check for rule in matched):
        return Screening(tuple(matched))
    facts = AstFacts(tree)
    return Screening(tuple(rule for rule in matched if not rule.has_candidate_check or rule.candidate(facts)))


def _python_source(path: str, text: str) -> tuple[NotebookSource | None, str, ParseFailure | None]:
    """Return the Python source of a file: its text, or a notebook's code cells joined.

    A notebook that is not notebook JSON gives its raw text and the failure to report.
    """
    if not path.endswith(".ipynb"):
        return None, text, None
    try:
        notebook = notebook_source(text)
    except ValueError as error:
        return None, text, ParseFailure(path=path, line=1, column=1, reason=str(error))
    return notebook, notebook.source, None


def _libcst_parses(source: str) -> bool:
    """Tell whether libcst parses a source that CPython's ``ast`` rejected; called for such sources only."""
    try:
        cst.parse_module(source)
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return False
    return True


def _parse_ast(path: str, source: str, notebook: NotebookSource | None) -> tuple[ast.Module | None, ParseFailure | None]:
    """Parse a source with ``ast``, or return where and why the parse failed."""
    try:
        return compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True), None
    except SyntaxError as error:
        failure = ParseFailure(path=path, line=error.lineno or 1, column=error.offset or 1, reason=error.msg)
        return None, _in_cell(failure, notebook)
    except (ValueError, RecursionError) as error:
        return None, ParseFailure(path=path, line=1, column=1, reason=str(error))


def _in_cell(failure: ParseFailure, notebook: NotebookSource | None) -> ParseFailure:
    """Give a notebook's parse failure its cell and the line within it, as its findings have."""
    if notebook is None:
        return failure
    cell, line = notebook.locate(failure.line)
    return ParseFailure(path=failure.path, line=line, column=failure.column, reason=f"cell {cell}: {failure.reason}")


def applicable_rules(path: str, text: str, rules: Sequence[type[FileRule]]) -> list[type[FileRule]]:
    """Return the rules whose text pre-filter matches the file; the others cannot report on it.

    A notebook's pre-filters read the code of its cells, which is all the rules check. Its
    JSON also contains markdown and outputs (plots as base64 text, megabytes of them), in
    which a fragment would match text no rule checks, and slowly. A notebook that is not
    notebook JSON keeps every rule that matches its text: its analysis reports the failure.
    """
    return _prefiltered(path, _python_source(path, text)[1], rules)


def _prefiltered(path: str, source: str, rules: Sequence[type[FileRule]]) -> list[type[FileRule]]:
    test_file = is_test_path(path)
    return [rule for rule in rules if (rule.applies_to_tests or not test_file) and rule.applies_to(path, source)]


def analyze_text(
    path: str, text: str, rules: Sequence[type[FileRule]], repo: RepoContext, *, profile: bool = False,
    screened: bool = False,
) -> FileAnalysis:
    """Parse ``text`` once and run ``rules`` over it in a single batched traversal.

    A file libcst cannot parse yields a :class:`ParseFailure` and no findings; it never
    raises, so one broken file cannot stop the others. With ``profile``, each rule
    runs in a traversal of its own, so that its time is measured alone; that is slower,
    and meant for finding the rule that makes a scan slow. ``screened`` says that the
    rules come from :func:`screen`, whose candidate checks are then not run again.
    """
    codes = tuple(rule.code for rule in rules)
    notebook, source, notebook_failure = _python_source(path, text)
    if notebook_failure is not None:
        return FileAnalysis(path, codes, failure=notebook_failure)
    started = time.perf_counter()
    if not screened:
        rules = _candidates(rules, source)
    if not rules:
        timings = (("parse", time.perf_counter() - started),) if profile else ()
        return FileAnalysis(path, codes, timings=timings)
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        return FileAnalysis(path, codes, failure=_in_cell(_syntax_failure(path, source, error), notebook))
    except (RecursionError, ValueError) as error:
        return FileAnalysis(path, codes, failure=ParseFailure(path=path, line=1, column=1, reason=str(error)))
    if not rules:
        return FileAnalysis(path, codes)
    context = ModuleContext(path, module, repo)
    timings: tuple[tuple[str, float], ...] = ()
    if profile:
        timings = (("parse", time.perf_counter() - started), *_traverse_each(context, module, rules, repo))
    else:
        traverse(module, context, rules)
    if not context.pending:
        return FileAnalysis(path, codes, timings=timings)
    return FileAnalysis(path, codes, findings=tuple(positioned_findings(context, module, source, notebook)), timings=timings)


def _candidates(rules: Sequence[type[FileRule]], source: str) -> Sequence[type[FileRule]]:
    """Drop the rules whose ``ast`` candidate check rules the file out; parse with ``ast`` only if one has a check."""
    if not any(rule.has_candidate_check for rule in rules):
        return rules
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        # libcst's parse reports the failure, as for any other file.
        return rules
    facts = AstFacts(tree)
    return [rule for rule in rules if not rule.has_candidate_check or rule.candidate(facts)]


def _traverse_each(
    context: ModuleContext, module: cst.Module, rules: Sequence[type[FileRule]], repo: RepoContext
) -> list[tuple[str, float]]:
    # Each rule gets a fresh context, so that it resolves imports exactly as in a batched
    # traversal. Its findings then join those of ``context``, which shares the module.
    timings = []
    for rule in rules:
        started = time.perf_counter()
        own = ModuleContext(context.path, module, repo)
        walk_batched(module, [_ContextTracker(own), rule(own)])
        context.pending.extend(own.pending)
        timings.append((rule.code, time.perf_counter() - started))
    return timings


def _syntax_failure(path: str, source: str, error: cst.ParserSyntaxError) -> ParseFailure:
    # CPython's own parser names the error and its column better than libcst does
    # ("'(' was never closed"); it is asked only for files that already failed.
    try:
        compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as syntax:
        return ParseFailure(path=path, line=syntax.lineno or 1, column=syntax.offset or 1, reason=syntax.msg)
    except (ValueError, RecursionError):
        pass
    # libcst repeats its own 0-based position in the message; the failure carries ours.
    reason = re.sub(r"^parser error: error at \d+:\d+: ", "", str(error.message))
    return ParseFailure(path=path, line=error.editor_line, column=error.editor_column, reason=reason)


def traverse(module: cst.Module, context: ModuleContext, rules: Sequence[type[FileRule]]) -> None:
    """Run ``rules`` over ``module`` in one batched traversal; their findings collect in ``context.pending``."""
    visitors: list[object] = [_ContextTracker(context)]
    visitors.extend(rule(context) for rule in rules)
    walk_batched(module, visitors)


def positioned_findings(
    context: ModuleContext,
    module: cst.Module,
    source: str,
    notebook: NotebookSource | None,
    positions: Mapping[cst.CSTNode, CodeRange] | None = None,
) -> list[Finding]:
    """Turn the pending findings of ``context`` into findings with lines, columns and snippets, sorted.

    ``positions``, when the caller has computed every node's range already, saves
    computing the starts of the flagged nodes and their statements.
    """
    if positions is None:
        # Positions need libcst's code generation, so only runs with findings import them.
        from pytest_aiml.engine.positions import start_positions

        starts = start_positions(module, [node for pending in context.pending for node in _located(pending) if node is not None])
    else:
        starts = {node: position.start for node, position in positions.items()}
    lines = source.splitlines()
    findings = []
    seen: set[tuple[str, int, int, str]] = set()
    for pending in context.pending:
        node, anchor = _located(pending)
        position = starts.get(node)
        line = position.line if position else 0
        column = position.column + 1 if position else 0
        snippet = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        if pending.snippet is not None:
            snippet = pending.snippet
        statement = starts.get(anchor) if anchor is not None else None
        statement_line = statement.line if statement else 0
        message = pending.message
        if notebook is not None and line:
            cell, line = notebook.locate(line)
            statement_line = notebook.locate(statement_line)[1] if statement_line else 0
            message = f"cell {cell}: {message}"
        key = (pending.code, line, column, message)
        if key in seen:
            continue
        seen.add(key)
        findings.append(
            Finding(
                code=pending.code, path=context.path, line=line, column=column, message=message,
                snippet=snippet, statement_line=statement_line,
            )
        )
    findings.sort(key=lambda finding: (finding.line, finding.column, finding.code, finding.message))
    return findings


def _located(pending: PendingFinding) -> tuple[cst.CSTNode, cst.CSTNode | None]:
    """Return the flagged node and the node whose line an inline waiver must be on."""
    anchor = pending.statement
    if isinstance(anchor, (cst.FunctionDef, cst.ClassDef)) and anchor.decorators:
        # A definition's position starts at ``def``; a waiver belongs above its decorators.
        anchor = anchor.decorators[0]
    return pending.node, anchor
