"""The ``aiml`` section of the terminal summary."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from pytest_aiml.engine.rule import Priority

if TYPE_CHECKING:
    from pytest_aiml.session import AimlSession


def write_summary(terminalreporter: Any, aiml: AimlSession) -> None:
    """Write counts by priority, the maturity level and the report path."""
    from pytest_aiml.report.build import mlops_maturity

    findings: Counter[str] = Counter()
    failing_items = 0
    parse_errors = 0
    for result in aiml.results:
        if "parse_error" in result:
            parse_errors += 1
            continue
        if result.get("outcome") == "failed":
            failing_items += 1
            findings[result["priority"]] += len(result.get("findings") or [])
    counts = ", ".join(f"{findings.get(priority.value, 0)} {priority.value}" for priority in Priority)
    terminalreporter.write_sep("-", "aiml")
    terminalreporter.write_line(f"findings: {counts} (in {failing_items} failing items)")
    if parse_errors:
        terminalreporter.write_line(f"files that could not be parsed: {parse_errors}")
    level = mlops_maturity(aiml.inventory)["level"]
    terminalreporter.write_line(f"MLOps maturity level: {level} of 3")
    if aiml.settings.report_path is not None:
        terminalreporter.write_line(f"report: {aiml.settings.report_path}")
