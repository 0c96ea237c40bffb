"""The SARIF 2.1.0 log of a run, in the form GitHub code scanning accepts.

Built from the item payloads that the report is built from, so it imports nothing
from pytest. Waived and baselined findings are results too, marked with a
``suppressions`` entry, so that code scanning shows them as dismissed rather than
dropping them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pytest_aiml.engine.baseline import finding_fingerprint
from pytest_aiml.engine.registry import RuleRegistry

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
#: The base that every artifact URI is relative to; GitHub resolves it to the checkout.
SOURCE_ROOT = "%SRCROOT%"
#: The key of ``partialFingerprints``; the version suffix follows the SARIF convention.
FINGERPRINT_KEY = "pytestAimlFinding/v1"

#: SARIF levels by rule priority.
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
#: GitHub code scanning's security severity (a CVSS-like score as a string) by priority,
#: given only for rules of the security category.
SECURITY_SEVERITY = {"critical": "9.0", "high": "7.0", "medium": "5.0", "low": "3.0"}
#: Waivers written in the scanned code are ``inSource``; every other kind is ``external``.
SUPPRESSION_KINDS = {"inline": "inSource"}
BASELINE_JUSTIFICATION = "recorded in the pytest-aiml baseline"


def build_sarif(
    results: Sequence[Mapping[str, Any]], registry: RuleRegistry, *, tool_version: str, interrupted: bool = False
) -> dict[str, Any]:
    """Build a SARIF 2.1.0 log with one run from the item payloads of a session.

    An interrupted run's log records that the execution did not succeed, because items
    that never ran found nothing.

    ``registry`` supplies the metadata of each rule that ran. For a code that the
    registry lacks, the metadata comes from the payload, which carries it too.
    """
    ran = [result for result in results if "code" in result]
    codes = sorted({result["code"] for result in ran})
    rules = [_rule_descriptor(_rule_metadata(code, registry, ran)) for code in codes]
    index = {code: position for position, code in enumerate(codes)}
    sarif_results = []
    for result in ran:
        level = LEVELS[result["priority"]]
        for finding in result.get("findings") or []:
            sarif_results.append(_result(finding, level, index, suppression=None))
        for entry in result.get("waived") or []:
            suppression = {
                "kind": SUPPRESSION_KINDS.get(entry.get("source", ""), "external"),
                "justification": entry.get("reason") or f"waived by {entry['waiver']}",
            }
            sarif_results.append(_result(entry["finding"], level, index, suppression=suppression))
        for finding in result.get("baselined") or []:
            suppression = {"kind": "external", "justification": BASELINE_JUSTIFICATION}
            sarif_results.append(_result(finding, level, index, suppression=suppression))
    sarif_results.sort(key=_result_order)
    run = {
        "tool": {
            "driver": {
                "name": "pytest-aiml",
                "version": tool_version,
                "semanticVersion": tool_version,
                "rules": rules,
            }
        },
        "invocations": [_invocation(results, interrupted)],
        "originalUriBaseIds": {SOURCE_ROOT: {"description": {"text": "The pytest rootdir of the run."}}},
        "columnKind": "unicodeCodePoints",
        "results": sarif_results,
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def write_sarif(document: Mapping[str, Any], path: Path) -> None:
    """Write ``document`` as JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        # mkstemp creates the file readable by its owner only; CI uploads it as another user.
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def is_notebook(path: str) -> bool:
    """Tell whether findings in ``path`` count lines within a notebook cell, not within the file."""
    return path.endswith(".ipynb")


def _rule_metadata(code: str, registry: RuleRegistry, results: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    if code in registry:
        rule = registry.get(code)
        return {
            "code": rule.code, "slug": rule.slug, "message": rule.message, "impact": rule.impact, "fix": rule.fix,
            "priority": rule.priority.value, "category": rule.category.value,
        }
    payload = next(result for result in results if result["code"] == code)
    return {key: payload[key] for key in ("code", "slug", "message", "impact", "fix", "priority", "category")}


def _rule_descriptor(rule: Mapping[str, str]) -> dict[str, Any]:
    properties: dict[str, Any] = {"tags": [rule["category"]], "precision": "high"}
    if rule["category"] == "security":
        properties["security-severity"] = SECURITY_SEVERITY[rule["priority"]]
    return {
        "id": rule["code"],
        "name": rule["slug"],
        "shortDescription": {"text": rule["message"]},
        "fullDescription": {"text": rule["impact"]},
        "help": {"text": rule["fix"]},
        "defaultConfiguration": {"level": LEVELS[rule["priority"]]},
        "properties": properties,
    }


def _result(
    finding: Mapping[str, Any], level: str, index: Mapping[str, int], *, suppression: dict[str, str] | None
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding["code"],
        "ruleIndex": index[finding["code"]],
        "level": level,
        "message": {"text": finding["message"]},
        "locations": [_location(finding["path"], finding.get("line", 0), finding.get("column", 0))],
        "partialFingerprints": {FINGERPRINT_KEY: finding_fingerprint(finding)},
    }
    if suppression is not None:
        result["suppressions"] = [suppression]
    return result


def _location(path: str, line: int, column: int) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": quote(path), "uriBaseId": SOURCE_ROOT}}
    # A notebook finding's line counts within its cell (the message names the cell),
    # so a region in the .ipynb JSON would point at the wrong line: it stays file-level.
    if line > 0 and not is_notebook(path):
        region = {"startLine": line}
        if column > 0:
            region["startColumn"] = column
        physical["region"] = region
    return {"physicalLocation": physical}


def _invocation(results: Iterable[Mapping[str, Any]], interrupted: bool) -> dict[str, Any]:
    """Describe the run: files that could not be parsed become errors, files not analysed warnings."""
    notifications = []
    for result in results:
        unread = result.get("unread")
        if unread is not None:
            notifications.append(
                {
                    "level": "warning",
                    "message": {"text": f"not analysed: {unread['reason']}"},
                    "locations": [_location(unread["path"], 0, 0)],
                }
            )
        failure = result.get("parse_error")
        if failure is None:
            continue
        notifications.append(
            {
                "level": "error",
                "message": {"text": f"could not parse the file, so {', '.join(result.get('rules', []))} did not check it: {failure['reason']}"},
                "locations": [_location(failure["path"], failure.get("line", 0), failure.get("column", 0))],
            }
        )
    notifications.sort(key=lambda entry: json.dumps(entry, sort_keys=True))
    invocation: dict[str, Any] = {"executionSuccessful": not interrupted}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return invocation


def _result_order(result: Mapping[str, Any]) -> tuple[Any, ...]:
    physical = result["locations"][0]["physicalLocation"]
    region = physical.get("region", {})
    return (
        physical["artifactLocation"]["uri"], region.get("startLine", 0), region.get("startColumn", 0),
        result["ruleId"], result["message"]["text"], "suppressions" in result,
    )
