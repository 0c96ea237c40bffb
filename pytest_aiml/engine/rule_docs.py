"""Generate ``docs/rules/``: one page per rule and an index, from the rule classes themselves."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pytest_aiml.engine.catalog import ANTI_PATTERNS, ML_SMELLS
from pytest_aiml.engine.registry import RuleRegistry
from pytest_aiml.engine.rule import Example, Rule

INDEX_NAME = "index.md"


def rule_page(rule: type[Rule]) -> str:
    """Render the documentation page of one rule."""
    lines = [
        f"# {rule.code} {rule.slug}",
        "",
        f"**{rule.message}**",
        "",
        "| priority | category | scope | effort |",
        "| --- | --- | --- | --- |",
        f"| {rule.priority.value} | {rule.category.value} | {rule.scope.value} | {rule.effort.value} |",
        "",
    ]
    if rule.anti_pattern:
        lines += [f"Anti-pattern of the specification: *{rule.anti_pattern}*.", ""]
    lines += ["## Why it matters", "", rule.impact, "", "## How to fix it", "", rule.fix, ""]
    if getattr(rule, "fixer", None) is not None:
        lines += [
            "`pytest --aiml --aiml-fix` applies the mechanical part of this fix to findings that are not waived, "
            "and `--aiml-diff` shows it without writing (see [automatic fixes](../autofix.md)).",
            "",
        ]
    lines += ["## Flagged", ""]
    lines += _examples(rule.INVALID)
    lines += ["## Not flagged", ""]
    lines += _examples(rule.VALID)
    lines += [
        "## Waiving it",
        "",
        f"Run without it: `pytest --aiml --aiml-ignore {rule.code}`, or `ignore = [\"{rule.code}\"]` "
        "under `[tool.pytest-aiml]` in `pyproject.toml`.",
        "",
    ]
    return "\n".join(lines)


def _examples(examples: Iterable[Example]) -> list[str]:
    lines: list[str] = []
    for example in examples:
        if example.source:
            lines += [f"`{example.path}`:", "", "```python", example.source.rstrip("\n"), "```", ""]
        if example.fixed is not None:
            lines += ["After `pytest --aiml --aiml-fix`:", "", "```python", example.fixed.rstrip("\n"), "```", ""]
        for path, content in sorted(example.files.items()):
            if isinstance(content, bytes):
                preview = repr(content[:48]) + (" ..." if len(content) > 48 else "")
                lines += [f"`{path}`: {len(content)} bytes, starting `{preview}`", ""]
                continue
            language = "python" if path.endswith(".py") else "text"
            lines += [f"`{path}`:", "", f"```{language}", content.rstrip("\n"), "```", ""]
    return lines


def index_page(registry: RuleRegistry) -> str:
    lines = [
        "# Rules",
        "",
        "Generated from the rule classes by `python -m pytest_aiml docs`; do not edit by hand.",
        "",
        "| code | rule | priority | category | anti-pattern of the specification |",
        "| --- | --- | --- | --- | --- |",
    ]
    for rule in registry:
        lines.append(
            f"| [{rule.code}]({rule.code}.md) | {rule.slug} | {rule.priority.value} | {rule.category.value} "
            f"| {rule.anti_pattern or ''} |"
        )
    lines += [
        "",
        "## The specification's anti-patterns",
        "",
        "Each anti-pattern of the original specification, by priority, and the rules that check it.",
        "",
        "| priority | anti-pattern | rules |",
        "| --- | --- | --- |",
    ]
    for priority, names in ANTI_PATTERNS.items():
        for name in names:
            checking = [rule for rule in registry if rule.anti_pattern == name]
            lines.append(f"| {priority} | {name} | {_links(checking) or 'not checked'} |")
    lines += [
        "",
        "## ML code smells",
        "",
        "The 22 ML-specific code smells catalogued by Zhang, Cruz and van Deursen (2022, *Code Smells for "
        "Machine Learning Applications*), and the rules that check them.",
        "",
        "| smell | rules |",
        "| --- | --- |",
    ]
    for smell in ML_SMELLS:
        checking = [rule for rule in registry if smell in rule.smells]
        lines.append(f"| {smell} | {_links(checking) or 'not checked'} |")
    return "\n".join(lines) + "\n"


def _links(rules: Iterable[type[Rule]]) -> str:
    return ", ".join(f"[{rule.code}]({rule.code}.md) {rule.slug}" for rule in rules)


def expected_pages(registry: RuleRegistry) -> dict[str, str]:
    """Return file name -> content of every page ``docs/rules/`` should hold."""
    pages = {f"{rule.code}.md": rule_page(rule) for rule in registry}
    pages[INDEX_NAME] = index_page(registry)
    return pages


def write_pages(registry: RuleRegistry, folder: Path) -> list[str]:
    """Write the pages and delete pages of rules that no longer exist; return what changed."""
    folder.mkdir(parents=True, exist_ok=True)
    pages = expected_pages(registry)
    changed = []
    for name, content in pages.items():
        target = folder / name
        if not target.exists() or target.read_text(encoding="utf-8") != content:
            target.write_text(content, encoding="utf-8")
            changed.append(name)
    for stale in sorted(folder.glob("AIML*.md")):
        if stale.name not in pages:
            stale.unlink()
            changed.append(stale.name)
    return changed
