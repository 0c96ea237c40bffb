"""Collectors and items: one item per (file rule, file it can report on), per repository rule, never per finding."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_aiml.engine.findings import Finding, ParseFailure
from pytest_aiml.engine.rule import ArtifactRule, FileRule, RepoRule, Rule
from pytest_aiml.rules.artifacts import artifact_findings
from pytest_aiml.engine.waivers import FILE_WAIVER_MAX_LINE, InlineWaiverError, Waiver
from pytest_aiml.outcomes import Verdict
from pytest_aiml.waivers import InvalidMarker, marker_waivers

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from pytest_aiml.engine.runner import NotAnalysed
    from pytest_aiml.session import AimlSession

#: The key of each generated item's result among its records. Records travel on the
#: test report's ``aiml_records`` attribute (builtins only), which pytest-xdist carries
#: to the controller, the process that writes the report.
RESULT_PROPERTY = "aiml"
#: The key under which artifact items put the whole inspection, for the report's inventory.
ARTIFACT_PROPERTY = "aiml_artifact"
PARSE_FIX = (
    "correct the syntax error, or add the file to 'exclude' in [tool.pytest-aiml] if it is not meant to be Python."
)


class RepositoryRuleError(Exception):
    """A repository rule raised; all of them run together, so its item shows the traceback it left."""


class AimlFailure(Exception):
    """Raised by an item whose rule found something; rendered without a traceback."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def item_name(rule: type[Rule]) -> str:
    return f"{rule.code}-{rule.slug}"


def render_failure(rule: type[Rule], verdict: Verdict) -> str:
    """Render the active findings the way a code review reads: one line each, then what to do."""
    findings = verdict.active
    lines = [finding.render() for finding in findings]
    count = len(findings)
    lines.append("")
    lines.append(
        f"{count} finding{'s' if count != 1 else ''} of {rule.code} {rule.slug} ({rule.priority.value}, {rule.category.value})."
    )
    for finding, waiver in verdict.expired:
        lines.append(f"The waiver {waiver.origin} would cover {finding.location()} but expired on {waiver.expires}.")
    for finding, waiver in verdict.misplaced:
        lines.append(
            f"The waiver {waiver.origin} names {finding.code}, but the finding is on the whole of {finding.path}, "
            f"so only a file waiver covers it: # aiml: waive-file[{finding.code}] reason, "
            f"within its first {FILE_WAIVER_MAX_LINE} lines."
        )
    settled = len(verdict.waived) + len(verdict.baselined)
    if settled:
        lines.append(f"{len(verdict.waived)} waived and {len(verdict.baselined)} baselined finding(s) are not shown.")
    lines.append(f"Why: {rule.impact}")
    lines.append(f"Fix: {rule.fix}")
    return "\n".join(lines)


def result_payload(rule: type[Rule], target: str, verdict: Verdict, declared: Sequence[Waiver] = ()) -> dict[str, Any]:
    """Return the builtins-only record of one item's result, as the report needs it."""
    return {
        "code": rule.code,
        "slug": rule.slug,
        "target": target,
        "priority": rule.priority.value,
        "category": rule.category.value,
        "message": rule.message,
        "impact": rule.impact,
        "fix": rule.fix,
        "effort": rule.effort.value,
        "anti_pattern": rule.anti_pattern,
        "findings": [finding.serialized() for finding in verdict.active],
        "below_threshold": verdict.below_threshold,
        "waived": [
            {"finding": finding.serialized(), "waiver": waiver.origin, "source": waiver.source, "reason": waiver.reason}
            for finding, waiver in verdict.waived
        ],
        "baselined": [finding.serialized() for finding in verdict.baselined],
        "waivers_used": verdict.waivers_used(),
        "expired_waivers": sorted({waiver.origin for _, waiver in verdict.expired}),
        "declared_waivers": [waiver.serialized() for waiver in declared],
    }


def skip_item(reason: str) -> NoReturn:
    """Skip the running item, reported at the item's location rather than inside the plugin.

    Every item here returns a line number from ``reportinfo``, which pytest requires for this.
    """
    raise pytest.skip.Exception(reason, _use_item_location=True)


class AimlItem(pytest.Item):
    """Base of every generated item: carries the ``aiml`` marker and renders failures plainly."""

    def __init__(self, *, aiml: AimlSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aiml = aiml
        self.add_marker("aiml")
        self.aiml_records: list[tuple[str, Any]] = []

    def record(self, key: str, value: Any) -> None:
        """Keep a result for the report; ``value`` must be builtins only."""
        self.aiml_records.append((key, value))

    def repr_failure(self, excinfo: ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        # pytest shows an xfailed item by its reason alone, so the traceback it would format
        # for pytest.xfail (about 20 frames of plugin code, 0.1 s each item) is never read.
        if isinstance(excinfo.value, (AimlFailure, InvalidMarker, RepositoryRuleError, pytest.xfail.Exception)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def conclude(self, rule: type[Rule], target: str, findings: Sequence[Finding], relative: str | None) -> None:
        """Settle the findings, record the result for the report, then fail, xfail or pass."""
        inline = self.aiml.item_waivers(relative, findings)
        markers = marker_waivers(self, self.aiml.all_rules)
        verdict = self.aiml.settle(rule, findings, inline=inline, markers=markers)
        declared = [*inline, *(waiver for waiver in markers if waiver.covers_code(rule.code))]
        self.record(RESULT_PROPERTY, result_payload(rule, target, verdict, declared))
        # JUnit XML shows user properties per test case, so CI dashboards can group by them.
        self.user_properties.extend(
            [("aiml_code", rule.code), ("aiml_priority", rule.priority.value), ("aiml_findings", len(verdict.active))]
        )
        if verdict.fails:
            raise AimlFailure(render_failure(rule, verdict))
        if verdict.waived or verdict.baselined:
            reasons = sorted({f"waived by {waiver.origin}: {waiver.reason}" for _, waiver in verdict.waived})
            if verdict.baselined:
                reasons.append(f"{len(verdict.baselined)} finding(s) in baseline")
            pytest.xfail("; ".join(reasons))


class RuleItem(AimlItem):
    """One file rule checked on one file; the file is analysed when the first of its items runs."""

    def __init__(self, *, rule: type[FileRule], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule
        self.target = self.aiml.relative(self.path)

    def runtest(self) -> None:
        analysis = self.aiml.analyze(self.target)
        if analysis.failure is not None:
            # CPython parsed the file at collection, libcst could not: still one clear error.
            raise AimlFailure(f"{analysis.failure.render()}\n\nFix: {PARSE_FIX}")
        self.conclude(self.rule, self.target, analysis.for_rule(self.rule.code), self.target)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        analysis = self.aiml.analyzed(self.target)
        findings = analysis.for_rule(self.rule.code) if analysis is not None else ()
        line = findings[0].line - 1 if findings and findings[0].line else 0
        return self.path, line, f"{self.rule.code} {self.rule.slug}"


class ParseErrorItem(AimlItem):
    """Stands for a file libcst could not parse: one error for the file, instead of one per rule."""

    def __init__(self, *, failure: ParseFailure, rules: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failure = failure
        self.rules = tuple(rules)

    def runtest(self) -> None:
        self.record(RESULT_PROPERTY, {"parse_error": self.failure.serialized(), "rules": list(self.rules)})
        raise AimlFailure(
            f"{self.failure.render()}\n\n"
            f"pytest-aiml could not check this file for {', '.join(self.rules)}.\n"
            f"Fix: {PARSE_FIX}"
        )

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, max(self.failure.line - 1, 0), "aiml parse error"


class UnreadFileItem(AimlItem):
    """Item of a source file that is not analysed (too large, binary, unreadable): skipped, with the reason."""

    def __init__(self, *, not_analysed: NotAnalysed, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.not_analysed = not_analysed
        self.target = self.aiml.relative(self.path)

    def runtest(self) -> None:
        self.record(RESULT_PROPERTY, {"unread": {"path": self.target, "reason": self.not_analysed.reason}})
        skip_item(f"{self.target} was not analysed: {self.not_analysed.reason}. Fix: {self.not_analysed.fix}.")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, "aiml not analysed"


class RepoRuleItem(AimlItem):
    """One repository rule, checked on the inventory."""

    def __init__(self, *, rule: type[RepoRule], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule

    def runtest(self) -> None:
        results = self.aiml.repository_results
        error = results.errors.get(self.rule.code)
        if error is not None:
            raise RepositoryRuleError(f"{self.rule.code} raised an exception while checking the repository:\n{error}")
        self.conclude(self.rule, ".", results.findings.get(self.rule.code, ()), None)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.aiml.settings.rootdir, 0, f"{self.rule.code} {self.rule.slug} (repository)"


class AimlFile(pytest.File):
    """The generated items of one repository file."""

    def __init__(self, *, aiml: AimlSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aiml = aiml

    def collect(self) -> Iterable[pytest.Item]:
        relative = self.aiml.relative(self.path)
        try:
            plan = self.aiml.plan(relative)
        except InlineWaiverError as error:
            raise self.CollectError(f"pytest-aiml: invalid inline waiver: {error}") from None
        if plan is None:
            return
        if plan.unread is not None:
            yield UnreadFileItem.from_parent(self, name="aiml-not-analysed", aiml=self.aiml, not_analysed=plan.unread)
            return
        if plan.failure is not None:
            yield ParseErrorItem.from_parent(
                self, name="aiml-parse-error", aiml=self.aiml, failure=plan.failure, rules=plan.rules
            )
            return
        for code in plan.rules:
            rule = self.aiml.registry.get(code)
            assert issubclass(rule, FileRule)
            yield RuleItem.from_parent(self, name=item_name(rule), aiml=self.aiml, rule=rule)


class ArtifactItem(AimlItem):
    """One artifact check (safety, versioning, validity, documentation) on one model file."""

    def __init__(self, *, rule: type[ArtifactRule], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule
        self.target = self.aiml.relative(self.path)

    def runtest(self) -> None:
        inspection = self.aiml.inspect(self.target)
        result = inspection.checks.get(self.rule.check)
        self.record(ARTIFACT_PROPERTY, inspection.to_dict())
        if result is not None and result.status == "skip":
            skip_item(f"{self.target}: {result.summary}")
        self.conclude(self.rule, self.target, artifact_findings(self.rule, inspection), None)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"{self.rule.code} {self.rule.slug}"


class ArtifactFile(pytest.File):
    """The generated items of one model artifact."""

    def __init__(self, *, aiml: AimlSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aiml = aiml

    def collect(self) -> Iterable[pytest.Item]:
        for rule in self.aiml.registry.artifact_rules():
            yield ArtifactItem.from_parent(self, name=item_name(rule), aiml=self.aiml, rule=rule)


class AimlRepository(pytest.Collector):
    """The repository-scoped items; its node id is ``.``, the rootdir."""

    def __init__(self, *, aiml: AimlSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aiml = aiml

    def collect(self) -> Iterable[pytest.Item]:
        for rule in self.aiml.registry.repo_rules():
            yield RepoRuleItem.from_parent(self, name=item_name(rule), aiml=self.aiml, rule=rule)


class NotImported(pytest.File):
    """Stands in for the test module pytest would import from a source file named on the command line."""

    def collect(self) -> Iterable[pytest.Item]:
        return ()
