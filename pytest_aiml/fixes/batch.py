"""Fixing the files of a run: plan every file, then write the changes or show them as a diff."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.rule import FileRule
from pytest_aiml.fixes.apply import FileFix, FindingFilter, fix_source
from pytest_aiml.fixes.write import WriteStatus, decode_source, unified_diff, write_fixed

log = logging.getLogger("pytest_aiml.fixes")


class SkipFile(Exception):
    """Raised by a finding filter for a file that must not be fixed; the message is the reason."""


@dataclass
class FixReport:
    """Every file the fix step changed or would change, and what happened to each."""

    #: False for ``--aiml-diff``: the changes are shown, not written.
    write: bool
    fixes: list[FileFix] = field(default_factory=list)
    #: Why a changed file was not written, by path.
    not_written: dict[str, str] = field(default_factory=dict)
    #: Files the fix step did not look at, with the reason.
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def done(self) -> list[FileFix]:
        """Return the changed files that were written (or, for a diff, that would be)."""
        return [fix for fix in self.fixes if fix.changed and fix.path not in self.not_written]

    def counts_by_rule(self) -> Counter[str]:
        return Counter(finding.code for fix in self.done() for finding in fix.applied)


def fix_files(
    root: Path,
    paths: Iterable[str],
    rules: Sequence[type[FileRule]],
    repo: RepoContext,
    select_for: Callable[[str, str], FindingFilter],
    *,
    write: bool,
) -> FixReport:
    """Fix ``paths`` (relative to ``root``) with the fixers of ``rules``.

    ``select_for(path, text)`` returns the filter that keeps the findings to fix in
    that file, or raises :class:`SkipFile`. With ``write`` the changed files are
    replaced on disk, otherwise only their diffs are kept.
    """
    report = FixReport(write=write)
    fixers = [rule for rule in rules if rule.fixer is not None]
    if not fixers:
        return report
    for path in paths:
        try:
            content = (root / path).read_bytes()
        except OSError as error:
            report.skipped.append((path, f"cannot be read: {error}"))
            continue
        text = decode_source(content)
        if text is None:
            report.skipped.append((path, "is not UTF-8"))
            continue
        try:
            select = select_for(path, text)
        except SkipFile as error:
            report.skipped.append((path, str(error)))
            continue
        fix = fix_source(path, text, fixers, repo, select)
        if not fix.applied and not fix.unfixable:
            continue
        report.fixes.append(fix)
        if write and fix.changed:
            status, reason = write_fixed(root / path, content, fix.fixed)
            if status is not WriteStatus.WRITTEN:
                report.not_written[path] = reason
            else:
                log.debug("fixed %s: %d finding(s)", path, len(fix.applied))
    return report


def summary_lines(report: FixReport) -> list[str]:
    """Render the fix step for the terminal: what was fixed per rule and file, and what was left."""
    done = report.done()
    counts = report.counts_by_rule()
    total = sum(counts.values())
    lines = []
    verb = "fixed" if report.write else "would fix"
    if total:
        files = f"{len(done)} file{'s' if len(done) != 1 else ''}"
        lines.append(f"{verb} {total} finding{'s' if total != 1 else ''} in {files} ({_per_rule(counts)})")
        for fix in done:
            of_file = Counter(finding.code for finding in fix.applied)
            lines.append(f"  {fix.path}: {_per_rule(of_file)}")
    else:
        lines.append("no finding to fix: none has a safe mechanical fix, or all are waived or baselined")
    if not report.write and total:
        lines.append("no file was written (--aiml-diff); run with --aiml-fix to apply the diff below")
    for path, reason in sorted(report.not_written.items()):
        lines.append(f"not written: {path}: {reason}")
    for path, reason in report.skipped:
        lines.append(f"not fixed: {path} {reason}")
    left = [(finding, reason) for fix in report.fixes for finding, reason in fix.unfixable]
    if left:
        lines.append("left for a person (no safe mechanical fix):")
        for finding, reason in sorted(left, key=lambda entry: (entry[0].path, entry[0].line, entry[0].column)):
            lines.append(f"  {finding.location()} {finding.code}: {reason}")
    return lines


def diff_text(report: FixReport) -> str:
    """Return the unified diff of every changed file, in path order."""
    return "".join(unified_diff(fix.path, fix.original, fix.fixed) for fix in sorted(report.done(), key=lambda fix: fix.path))


def _per_rule(counts: Counter[str]) -> str:
    return ", ".join(f"{code}: {count}" for code, count in sorted(counts.items()))
