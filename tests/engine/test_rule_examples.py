"""Every rule's own examples: each INVALID example is reported, each VALID one is not."""

from __future__ import annotations

import pytest

from pytest_aiml.engine.examples import run_example
from pytest_aiml.engine.registry import builtin_rules

REGISTRY = builtin_rules()


def _cases(kind: str) -> list:
    cases = []
    for rule in REGISTRY:
        for index, example in enumerate(getattr(rule, kind)):
            cases.append(pytest.param(rule, example, id=f"{rule.code}-{kind.lower()}-{index}"))
    return cases


@pytest.mark.parametrize(("rule", "example"), _cases("INVALID"))
def test_invalid_example_is_reported(rule, example):
    findings = run_example(rule, example)
    assert findings, f"{rule.code} reported nothing on its INVALID example:\n{example.source or example.files}"
    assert {finding.code for finding in findings} == {rule.code}
    if example.lines:
        assert sorted({finding.line for finding in findings}) == sorted(example.lines)


@pytest.mark.parametrize(("rule", "example"), _cases("VALID"))
def test_valid_example_is_clean(rule, example):
    findings = run_example(rule, example)
    assert findings == [], "\n".join(finding.render() for finding in findings)
