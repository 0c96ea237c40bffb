"""What happens to an item's findings: waived, baselined, below the threshold, or failing."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pytest_aiml.engine.baseline import finding_fingerprint
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.rule import Priority, Rule
from pytest_aiml.engine.waivers import Waiver, inline_match


@dataclass
class Verdict:
    """The findings of one item, sorted by what settles them."""

    active: list[Finding] = field(default_factory=list)
    waived: list[tuple[Finding, Waiver]] = field(default_factory=list)
    baselined: list[Finding] = field(default_factory=list)
    #: Active findings that an expired waiver would have covered.
    expired: list[tuple[Finding, Waiver]] = field(default_factory=list)
    #: Active findings on a whole file that a line waiver in that file names. Only
    #: ``waive-file`` covers a finding that has no line.
    misplaced: list[tuple[Finding, Waiver]] = field(default_factory=list)
    below_threshold: bool = False

    @property
    def fails(self) -> bool:
        return bool(self.active) and not self.below_threshold

    def waivers_used(self) -> list[str]:
        return sorted({waiver.origin for _, waiver in self.waived} | {waiver.origin for _, waiver in self.expired})


def settle(
    rule: type[Rule],
    findings: Sequence[Finding],
    *,
    config_waivers: Sequence[Waiver],
    inline_waivers: Sequence[Waiver] = (),
    marker_waivers: Sequence[Waiver] = (),
    baseline: Mapping[str, int] | None = None,
    fail_on: Priority = Priority.LOW,
    today: dt.date,
) -> Verdict:
    """Sort ``findings`` into waived, baselined and active ones.

    Waivers apply before the baseline: a waived finding needs no baseline entry. An
    expired waiver covers nothing, but is named on the findings it would have covered.
    """
    verdict = Verdict(below_threshold=rule.priority.rank > fail_on.rank)
    remaining_baseline: Counter[str] = Counter(baseline or {})
    for finding in findings:
        candidates = [
            waiver for waiver in config_waivers if waiver.covers_code(finding.code) and waiver.covers_path(finding.path)
        ]
        candidates += [waiver for waiver in inline_waivers if inline_match(finding, waiver)]
        candidates += [waiver for waiver in marker_waivers if waiver.covers_code(finding.code) and waiver.covers_path(finding.path)]
        valid = [waiver for waiver in candidates if not waiver.expired(today)]
        if valid:
            verdict.waived.append((finding, valid[0]))
            continue
        print_key = finding_fingerprint(finding)
        if remaining_baseline[print_key] > 0:
            remaining_baseline[print_key] -= 1
            verdict.baselined.append(finding)
            continue
        verdict.active.append(finding)
        verdict.expired.extend((finding, waiver) for waiver in candidates)
        if not finding.line:
            verdict.misplaced.extend(
                (finding, waiver) for waiver in inline_waivers
                if not waiver.whole_file and waiver.file == finding.path and waiver.covers_code(finding.code)
            )
    return verdict
