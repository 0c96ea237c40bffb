"""Aggregates of the item results: counts, waivers, stale waivers and the baseline's state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_aiml.engine.baseline import finding_fingerprint
from pytest_aiml.engine.rule import Priority
from pytest_aiml.engine.waivers import Waiver

PRIORITIES = [priority.value for priority in Priority]


@dataclass
class RunSummary:
    """Aggregates of the item payloads, computed once by the process that writes the report."""

    findings_by_priority: dict[str, int] = field(default_factory=dict)
    failing_items: int = 0
    below_threshold: int = 0
    parse_errors: list[dict[str, Any]] = field(default_factory=list)
    #: Source files not analysed at all, with the reason: over the size limit, binary, unreadable.
    unread_files: list[dict[str, Any]] = field(default_factory=list)
    waived_by_rule: dict[str, int] = field(default_factory=dict)
    waivers: list[dict[str, Any]] = field(default_factory=list)
    stale_waivers: list[str] = field(default_factory=list)
    expired_waivers: list[str] = field(default_factory=list)
    baselined: list[dict[str, Any]] = field(default_factory=list)
    disappeared: list[Mapping[str, Any]] = field(default_factory=list)
    #: False when only part of the repository ran (paths, -k, -m, --lf, an interruption), so
    #: staleness is unknown.
    complete: bool = True
    #: True when collection errors or Ctrl-C stopped the run before the items ran.
    interrupted: bool = False

    @property
    def total_findings(self) -> int:
        return sum(self.findings_by_priority.values())


def summarize(
    results: Sequence[Mapping[str, Any]],
    config_waivers: Sequence[Waiver],
    baseline_entries: Sequence[Mapping[str, Any]],
    *,
    complete: bool,
    interrupted: bool = False,
) -> RunSummary:
    summary = RunSummary(complete=complete and not interrupted, interrupted=interrupted)
    counts: Counter[str] = Counter()
    waived_by_rule: Counter[str] = Counter()
    declared: dict[str, dict[str, Any]] = {waiver.origin: waiver.serialized() for waiver in config_waivers}
    covered: dict[str, list[str]] = {}
    used: set[str] = set()
    expired: set[str] = set()
    baselined_prints: Counter[str] = Counter()
    for result in results:
        if "parse_error" in result:
            summary.parse_errors.append(dict(result["parse_error"]))
            continue
        if "unread" in result:
            summary.unread_files.append(dict(result["unread"]))
            continue
        active = result.get("findings") or []
        counts[result["priority"]] += len(active)
        if active and result.get("below_threshold"):
            summary.below_threshold += len(active)
        if result.get("outcome") == "failed":
            summary.failing_items += 1
        for entry in result.get("waived") or []:
            waived_by_rule[result["code"]] += 1
            finding = entry["finding"]
            # A finding on a whole file has line 0, which a reader would take for a line.
            where = f"{finding['path']}:{finding['line']}" if finding["line"] else finding["path"]
            covered.setdefault(entry["waiver"], []).append(f"{where} {finding['code']}")
        for waiver in result.get("declared_waivers") or []:
            declared.setdefault(waiver["origin"], waiver)
        used.update(result.get("waivers_used") or [])
        expired.update(result.get("expired_waivers") or [])
        for finding in result.get("baselined") or []:
            summary.baselined.append(dict(finding))
            baselined_prints[finding_fingerprint(finding)] += 1
    summary.findings_by_priority = {priority: counts.get(priority, 0) for priority in PRIORITIES}
    summary.waived_by_rule = dict(sorted(waived_by_rule.items()))
    summary.waivers = [
        dict(waiver, findings=sorted(covered.get(origin, []))) for origin, waiver in sorted(declared.items())
    ]
    summary.expired_waivers = sorted(expired)
    if summary.complete:
        summary.stale_waivers = sorted(origin for origin in declared if origin not in used)
        remaining = Counter(baselined_prints)
        for entry in baseline_entries:
            if remaining[entry["fingerprint"]] > 0:
                remaining[entry["fingerprint"]] -= 1
            else:
                summary.disappeared.append(dict(entry))
    summary.baselined.sort(key=lambda finding: (finding["path"], finding["line"], finding["code"]))
    return summary
