"""GitHub Actions workflow commands that annotate the pull request's diff with findings.

GitHub shows at most 10 annotations of each level (error, warning, notice) per step
and drops the rest without a word ("Limitations" in actions/toolkit's
``docs/problem-matchers.md``), so the most severe findings are annotated first and
one notice counts those that did not fit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Annotation levels by rule priority, the same mapping as the SARIF levels.
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "notice"}
#: GitHub's maximum number of annotations of one level in one step.
MAX_PER_LEVEL = 10
PRIORITY_ORDER = ("critical", "high", "medium", "low")


def annotations_requested(option: str | None, environ: Mapping[str, str]) -> bool:
    """Tell whether to print annotations: ``--aiml-annotations`` decides, else ``GITHUB_ACTIONS``."""
    if option is not None:
        return option == "github"
    return environ.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    """Escape a workflow command's message, as GitHub's actions/toolkit ``escapeData`` does."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value, as actions/toolkit ``escapeProperty`` does."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(results: Iterable[Mapping[str, Any]]) -> list[str]:
    """Return one workflow command per active finding, within GitHub's limits per level.

    When some findings do not fit, the last line is a notice that counts them, and it
    takes one of the notice slots.
    """
    entries = sorted(_active_findings(results), key=_severity_order)
    by_level: dict[str, list[str]] = {"error": [], "warning": [], "notice": []}
    for result, finding in entries:
        by_level[LEVELS[result["priority"]]].append(_command(result, finding))
    overflow = sum(max(len(by_level[level]) - MAX_PER_LEVEL, 0) for level in ("error", "warning"))
    notice_limit = MAX_PER_LEVEL
    if overflow or len(by_level["notice"]) > MAX_PER_LEVEL:
        notice_limit = MAX_PER_LEVEL - 1
    overflow += max(len(by_level["notice"]) - notice_limit, 0)
    lines = [*by_level["error"][:MAX_PER_LEVEL], *by_level["warning"][:MAX_PER_LEVEL], *by_level["notice"][:notice_limit]]
    if overflow:
        noun = "finding" if overflow == 1 else "findings"
        lines.append(f"::notice::pytest-aiml: {overflow} more {noun} not annotated; see the report")
    return lines


def _active_findings(results: Iterable[Mapping[str, Any]]) -> Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    for result in results:
        if "code" not in result:
            continue  # a file that could not be parsed fails as its own item
        for finding in result.get("findings") or []:
            yield result, finding


def _severity_order(entry: tuple[Mapping[str, Any], Mapping[str, Any]]) -> tuple[Any, ...]:
    result, finding = entry
    return (
        PRIORITY_ORDER.index(result["priority"]), finding["path"], finding.get("line", 0),
        finding.get("column", 0), finding["code"], finding["message"],
    )


def _command(result: Mapping[str, Any], finding: Mapping[str, Any]) -> str:
    properties = []
    path = finding["path"]
    if path not in ("", "."):
        properties.append(("file", path))
        # A notebook finding's line counts within its cell (the message names the cell),
        # not within the .ipynb file, so it annotates the whole file.
        if finding.get("line", 0) > 0 and not path.endswith(".ipynb"):
            properties.append(("line", str(finding["line"])))
            if finding.get("column", 0) > 0:
                properties.append(("col", str(finding["column"])))
    properties.append(("title", f"{result['code']} {result['slug']}"))
    rendered = ",".join(f"{name}={escape_property(value)}" for name, value in properties)
    message = f"{finding['message']}\nFix: {result['fix']}"
    return f"::{LEVELS[result['priority']]} {rendered}::{escape_data(message)}"
