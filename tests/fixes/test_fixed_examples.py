"""Every fixable rule's own examples: each INVALID example with ``fixed=`` round-trips through the fix.

Fixing ``source`` must yield exactly ``fixed``, leave no finding of the rule, change
only the lines of the nodes the rule reported, and change nothing when run again.
An INVALID example without ``fixed=`` must come through the fix unchanged.
"""

from __future__ import annotations

import dataclasses
import difflib

import pytest

from pytest_aiml.engine.examples import run_example
from pytest_aiml.engine.registry import builtin_rules
from pytest_aiml.engine.rule import FileRule
from tests.fixes.helpers import fix_example

REGISTRY = builtin_rules()
FIXABLE = [rule for rule in REGISTRY if issubclass(rule, FileRule) and rule.fixer is not None]


def _cases(with_fixed: bool) -> list:
    cases = []
    for rule in FIXABLE:
        for index, example in enumerate(rule.INVALID):
            if (example.fixed is not None) == with_fixed:
                cases.append(pytest.param(rule, example, id=f"{rule.code}-invalid-{index}"))
    return cases


def _diff(expected: str, actual: str) -> str:
    return "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), "expected", "actual"))


def test_every_fixer_has_fixed_examples() -> None:
    assert "AIML101" in {rule.code for rule in FIXABLE}
    for rule in FIXABLE:
        assert any(example.fixed is not None for example in rule.INVALID), f"{rule.code} has a fixer but no INVALID example with fixed="


@pytest.mark.parametrize(("rule", "example"), _cases(with_fixed=True))
def test_fix_yields_fixed_source(rule, example) -> None:
    fix = fix_example(rule, example)
    assert fix.fixed == example.fixed, _diff(example.fixed, fix.fixed)
    assert fix.unfixable == ()


@pytest.mark.parametrize(("rule", "example"), _cases(with_fixed=True))
def test_fixed_source_has_no_finding(rule, example) -> None:
    findings = run_example(rule, dataclasses.replace(example, source=example.fixed, lines=()))
    assert findings == [], "\n".join(finding.render() for finding in findings)


@pytest.mark.parametrize(("rule", "example"), _cases(with_fixed=True))
def test_fix_changes_only_reported_nodes(rule, example) -> None:
    fix = fix_example(rule, example)
    reported = {finding.line for finding in run_example(rule, example)}
    assert {finding.line for finding in fix.applied} == reported
    covered = {line for start, end in fix.spans for line in range(start, end + 1)}
    assert reported <= covered
    original = example.source.splitlines()
    matcher = difflib.SequenceMatcher(a=original, b=fix.fixed.splitlines(), autojunk=False)
    for tag, first, last, _, _ in matcher.get_opcodes():
        if tag == "equal":
            continue
        # An insertion between two lines changes nothing of the original; it must sit inside a span too.
        touched = set(range(first + 1, last + 1)) or {first, first + 1}
        assert touched & covered, f"lines {first + 1}-{last} changed outside the reported nodes:\n{_diff(example.source, fix.fixed)}"
        if last > first:
            assert touched <= covered, f"lines {sorted(touched - covered)} changed outside the reported nodes"


@pytest.mark.parametrize(("rule", "example"), _cases(with_fixed=True))
def test_fixing_twice_changes_nothing(rule, example) -> None:
    again = fix_example(rule, example, source=example.fixed)
    assert again.fixed == example.fixed
    assert again.applied == ()


@pytest.mark.parametrize(("rule", "example"), _cases(with_fixed=False))
def test_example_without_fixed_is_unchanged(rule, example) -> None:
    fix = fix_example(rule, example)
    assert fix.fixed == example.source, f"the fix changes an example that declares no fixed=:\n{_diff(example.source, fix.fixed)}"
    assert fix.applied == ()
    assert len(fix.unfixable) == len(run_example(rule, example)), "every finding left unfixed needs a reason"
