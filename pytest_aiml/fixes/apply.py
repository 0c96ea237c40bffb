"""The fix step for one file: run the rules, keep the findings to fix, rewrite exactly their nodes.

A finding names a place by line and column, which cannot address a node. So the
fix step runs the rules on the text it is about to rewrite, in one batched traversal
as the analysis does, and pairs each node a rule reported with the finding the
analysis would build for it. The caller decides which of those findings to fix (the
waivers and the baseline settle the rest), and only their nodes are rewritten: a
fixer is never offered a node its rule did not report.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import CodeRange

from pytest_aiml.engine.context import ModuleContext, PendingFinding, RepoContext, dotted_name
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.rule import FileRule
from pytest_aiml.engine.positions import node_positions
from pytest_aiml.engine.runner import applicable_rules, positioned_findings, traverse
from pytest_aiml.fixes.arguments import append_import_alias
from pytest_aiml.fixes.fixer import FixContext, Fixer, ImportName, NoFix, names_in_use

log = logging.getLogger("pytest_aiml.fixes")

#: Chooses, among all findings of one rule in one file, those to fix.
FindingFilter = Callable[[type[FileRule], Sequence[Finding]], Collection[Finding]]


def every_finding(rule: type[FileRule], findings: Sequence[Finding]) -> Collection[Finding]:
    return findings


@dataclass(frozen=True, slots=True)
class FileFix:
    """The outcome of fixing one file: its text before and after, and what was done to which finding."""

    path: str
    original: str
    fixed: str
    #: Findings whose node was rewritten.
    applied: tuple[Finding, ...] = ()
    #: Findings of rules with a fixer that were left as they are, with the reason.
    unfixable: tuple[tuple[Finding, str], ...] = ()
    #: 1-based, inclusive line ranges of the original text that the fixes rewrote.
    spans: tuple[tuple[int, int], ...] = field(default=())

    @property
    def changed(self) -> bool:
        return self.fixed != self.original


def fix_source(
    path: str, text: str, rules: Sequence[type[FileRule]], repo: RepoContext, select: FindingFilter = every_finding
) -> FileFix:
    """Rewrite the findings of ``rules`` in ``text`` that ``select`` keeps, with each rule's fixer.

    Rules without a fixer are ignored, and so are notebooks: their cells are stored
    as JSON, which this step does not rewrite. A text that does not parse is
    returned unchanged, as the analysis reports it as a parse error instead.
    """
    fixable = [rule for rule in applicable_rules(path, text, rules) if rule.fixer is not None]
    unchanged = FileFix(path, text, text)
    if not fixable or path.endswith(".ipynb"):
        return unchanged
    try:
        module = cst.parse_module(text)
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return unchanged
    context = ModuleContext(path, module, repo)
    traverse(module, context, fixable)
    if not context.pending:
        return unchanged
    positions = node_positions(module)
    targets = _targets(context, module, text, positions, fixable, select)
    if not targets:
        return unchanged
    fix_context = FixContext(context, names_in_use(module))
    rewriter = _Rewriter(targets, fix_context)
    fixed_module = module.visit(rewriter)
    spans = [_span(positions, node) for node in rewriter.rewritten]
    if rewriter.imports:
        importer = _ImportAdder(rewriter.imports)
        spans.extend(_span(positions, node) for node in _import_statements(module, rewriter.imports))
        fixed_module = fixed_module.visit(importer)
        if importer.placed != set(rewriter.imports):
            return _refused(path, text, rewriter.applied, "a name the fix needs has no import statement to join")
    fixed = fixed_module.code
    if fixed != text and not _compiles(fixed, path):
        return _refused(path, text, rewriter.applied, "the fixed code does not compile")
    return FileFix(
        path, text, fixed, applied=tuple(rewriter.applied), unfixable=tuple(rewriter.unfixable), spans=tuple(sorted(set(spans)))
    )


def _refused(path: str, text: str, applied: Sequence[Finding], reason: str) -> FileFix:
    # A fixer bug must not reach the user's file: the whole file is left unchanged.
    log.warning("not fixing %s: %s, which is a bug in a fixer", path, reason)
    return FileFix(path, text, text, unfixable=tuple((finding, f"not fixed: {reason}") for finding in applied))


@dataclass(slots=True)
class _Target:
    """A reported node and, in rule order, the fixers to run on it with the findings they fix."""

    fixes: list[tuple[Fixer, Finding]] = field(default_factory=list)


def _targets(
    context: ModuleContext,
    module: cst.Module,
    text: str,
    positions: Mapping[cst.CSTNode, CodeRange],
    rules: Sequence[type[FileRule]],
    select: FindingFilter,
) -> dict[int, _Target]:
    # The findings come from the analysis's own builder, so the waivers and the baseline
    # match them as they match the items' findings (line, statement line, snippet).
    # Each pending node is paired with its finding by (code, line, column, message).
    findings = positioned_findings(context, module, text, None, positions)
    by_key = {(finding.code, finding.line, finding.column, finding.message): finding for finding in findings}
    nodes: dict[Finding, list[PendingFinding]] = {}
    for pending in context.pending:
        position = positions.get(pending.node)
        if position is None:
            continue
        key = (pending.code, position.start.line, position.start.column + 1, pending.message)
        finding = by_key.get(key)
        if finding is not None:
            nodes.setdefault(finding, []).append(pending)
    targets: dict[int, _Target] = {}
    for rule in rules:
        assert rule.fixer is not None
        fixer = rule.fixer()
        of_rule = [finding for finding in findings if finding.code == rule.code]
        if not of_rule:
            continue
        chosen = select(rule, of_rule)
        for finding in of_rule:
            if finding not in chosen:
                continue
            for pending in nodes.get(finding, ()):
                targets.setdefault(id(pending.node), _Target()).fixes.append((fixer, finding))
    return targets


class _Rewriter(cst.CSTTransformer):
    """Rewrites the target nodes, innermost first, and nothing else."""

    def __init__(self, targets: dict[int, _Target], context: FixContext) -> None:
        super().__init__()
        self.targets = targets
        self.context = context
        self.applied: list[Finding] = []
        self.unfixable: list[tuple[Finding, str]] = []
        self.imports: list[ImportName] = []
        #: The original nodes that were rewritten, for their line ranges.
        self.rewritten: list[cst.CSTNode] = []

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        updated = super().on_leave(original_node, updated_node)
        target = self.targets.get(id(original_node))
        if target is None or not isinstance(updated, cst.CSTNode):
            return updated
        node = updated
        for fixer, finding in target.fixes:
            result = fixer.rewrite(node, self.context)
            if isinstance(result, NoFix):
                self.unfixable.append((finding, result.reason))
                continue
            node = result.node
            self.applied.append(finding)
            self.imports.extend(request for request in result.imports if request not in self.imports)
        if node is not updated:
            self.rewritten.append(original_node)
        return node


def _binds(statement: cst.ImportFrom, request: ImportName) -> bool:
    """Tell whether ``statement`` is ``from <request.module> import ...`` binding ``request.beside``."""
    if statement.relative or isinstance(statement.names, cst.ImportStar):
        return False
    if dotted_name(statement.module) != request.module:
        return False
    for alias in statement.names:
        local = alias.asname.name if alias.asname is not None else alias.name
        if isinstance(local, cst.Name) and local.value == request.beside:
            return True
    return False


def _imports_name(statement: cst.ImportFrom, name: str) -> bool:
    assert not isinstance(statement.names, cst.ImportStar)
    return any(alias.asname is None and dotted_name(alias.name) == name for alias in statement.names)


class _ImportAdder(cst.CSTTransformer):
    """Adds each requested name to the ``from`` imports that bind the name it goes beside."""

    def __init__(self, requests: Sequence[ImportName]) -> None:
        super().__init__()
        self.requests = requests
        self.placed: set[ImportName] = set()

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        statement = updated_node
        for request in self.requests:
            if not _binds(statement, request):
                continue
            self.placed.add(request)
            if not _imports_name(statement, request.name):
                statement = append_import_alias(statement, request.name)
        return statement


def _import_statements(module: cst.Module, requests: Sequence[ImportName]) -> list[cst.ImportFrom]:
    found: list[cst.ImportFrom] = []

    class _Finder(cst.CSTVisitor):
        def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
            if any(_binds(node, request) for request in requests):
                found.append(node)

    module.visit(_Finder())
    return found


def _span(positions: Mapping[cst.CSTNode, CodeRange], node: cst.CSTNode) -> tuple[int, int]:
    position = positions[node]
    return position.start.line, position.end.line


def _compiles(source: str, path: str) -> bool:
    try:
        compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True
