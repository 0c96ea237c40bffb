"""The rule pages under docs/rules/ match the rule classes."""

from __future__ import annotations

from pathlib import Path

from pytest_aiml.engine.registry import builtin_rules
from pytest_aiml.engine.rule_docs import expected_pages

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules"


def test_rule_pages_are_up_to_date():
    expected = expected_pages(builtin_rules())
    stale = [name for name, content in expected.items() if not (DOCS / name).is_file() or (DOCS / name).read_text(encoding="utf-8") != content]
    extra = sorted(path.name for path in DOCS.glob("AIML*.md") if path.name not in expected)
    assert not stale and not extra, (
        f"docs/rules/ is out of date (stale: {stale}, extra: {extra}); run: python -m pytest_aiml docs"
    )


def test_every_rule_has_a_page_in_index():
    index = expected_pages(builtin_rules())["index.md"]
    for rule in builtin_rules():
        assert f"[{rule.code}]({rule.code}.md)" in index


def test_anti_patterns_all_have_rules():
    from pytest_aiml.engine.catalog import ALL_ANTI_PATTERNS

    checked = {rule.anti_pattern for rule in builtin_rules()}
    missing = [name for name in ALL_ANTI_PATTERNS if name not in checked]
    assert not missing, f"anti-patterns of the specification that no rule names: {missing}"


def test_twenty_smells_have_rules():
    from pytest_aiml.engine.catalog import ML_SMELLS

    covered = {smell for rule in builtin_rules() for smell in rule.smells}
    missing = [smell for smell in ML_SMELLS if smell not in covered]
    assert len(ML_SMELLS) - len(missing) >= 20, f"smells without a rule: {missing}"
