"""The ``aiml`` section of the terminal summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_aiml.session import AimlSession


def write_summary(terminalreporter: Any, aiml: AimlSession) -> None:
    """Write counts by priority, waivers and baseline state, the maturity level and the report path."""
    if not aiml.results and not aiml.interrupted:
        return
    summary = aiml.summary
    write = terminalreporter.write_line
    terminalreporter.write_sep("-", "aiml")
    if aiml.interrupted:
        write("the run was interrupted before the aiml items ran: the counts and the report are partial")
        write("if the repository's own tests fail to import, run pytest --aiml-only to check the repository alone")
    counts = ", ".join(f"{count} {priority}" for priority, count in summary.findings_by_priority.items())
    write(f"findings: {counts} (in {summary.failing_items} failing items)")
    if summary.below_threshold:
        write(f"{summary.below_threshold} finding(s) are below --aiml-fail-on {aiml.settings.fail_on.value} and do not fail")
    if summary.parse_errors:
        write(f"files that could not be parsed: {len(summary.parse_errors)}")
    if summary.unread_files:
        write(f"files not analysed (too large, binary or unreadable; -rs shows why): {len(summary.unread_files)}")
    waived = sum(summary.waived_by_rule.values())
    if waived:
        per_rule = ", ".join(f"{code}: {count}" for code, count in summary.waived_by_rule.items())
        write(f"waived findings: {waived} ({per_rule})")
    for origin in summary.expired_waivers:
        write(f"expired waiver: {origin}")
    if summary.stale_waivers:
        strict = " (aiml_strict_waivers: the run fails)" if aiml.settings.strict_waivers else ""
        write(f"stale waivers, matching no finding{strict}:")
        for origin in summary.stale_waivers:
            write(f"  {origin}")
    if aiml.settings.baseline_path is not None:
        if aiml.settings.baseline_update and aiml.baseline_refused:
            write(f"baseline not written: this run covered only part of the repository (paths, -k, -m, --lf or an "
                  f"interruption), so {aiml.settings.baseline_path} keeps its findings; record it with a full run")
        elif aiml.settings.baseline_update:
            write(f"baseline recorded: {aiml.settings.baseline_path}")
        else:
            write(f"in baseline: {len(summary.baselined)} finding(s)")
            if summary.disappeared:
                write(f"{len(summary.disappeared)} baseline finding(s) were not found (fixed, or now waived); shrink the baseline with --aiml-baseline-update")
    write(f"MLOps maturity level: {aiml.maturity_level} of 3")
    if aiml.settings.report_path is not None:
        write(f"report: {aiml.settings.report_path}")
