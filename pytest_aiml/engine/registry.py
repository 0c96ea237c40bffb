"""The rule registry: every rule of a run, by code, with selection by code or family prefix."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Sequence

from pytest_aiml.engine.catalog import ALL_ANTI_PATTERNS, ML_SMELLS
from pytest_aiml.engine.rule import CODE_PATTERN, SLUG_PATTERN, ArtifactRule, DeclaredRule, FileRule, RepoRule, Rule

#: Modules that define the built-in rules; each exposes ``RULES``.
BUILTIN_RULE_MODULES = (
    "pytest_aiml.rules.security",
    "pytest_aiml.rules.supply_chain",
    "pytest_aiml.rules.serving",
    "pytest_aiml.rules.llm",
    "pytest_aiml.rules.mlops",
    "pytest_aiml.rules.artifacts",
    "pytest_aiml.rules.declared",
    "pytest_aiml.rules.preprocessing",
    "pytest_aiml.rules.secrets",
    "pytest_aiml.rules.advisories",
    "pytest_aiml.rules.llm_practice",
    "pytest_aiml.rules.deployment",
    "pytest_aiml.rules.gpu",
    "pytest_aiml.rules.training",
    "pytest_aiml.rules.tensorflow",
    "pytest_aiml.rules.reproducibility",
    "pytest_aiml.rules.evaluation",
    "pytest_aiml.rules.dataframes",
    "pytest_aiml.rules.data",
)


class RuleError(ValueError):
    """A rule class that breaks the rule contract, or a selection naming no rule."""


class RuleRegistry:
    """An ordered collection of rule classes, unique by code and by slug."""

    def __init__(self, rules: Iterable[type[Rule]] = ()) -> None:
        self._rules: dict[str, type[Rule]] = {}
        for rule in rules:
            self.add(rule)

    def add(self, rule: type[Rule]) -> None:
        validate_rule(rule)
        if rule.code in self._rules and self._rules[rule.code] is not rule:
            raise RuleError(f"rule code {rule.code} is used by both {self._rules[rule.code].__qualname__} and {rule.__qualname__}")
        if any(other.slug == rule.slug and other is not rule for other in self._rules.values()):
            raise RuleError(f"rule slug {rule.slug!r} of {rule.code} is already used by another rule")
        self._rules[rule.code] = rule

    def __iter__(self) -> Iterator[type[Rule]]:
        return iter(sorted(self._rules.values(), key=lambda rule: rule.code))

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, code: object) -> bool:
        return code in self._rules

    def get(self, code: str) -> type[Rule]:
        return self._rules[code]

    def codes(self) -> list[str]:
        return sorted(self._rules)

    def matching(self, selector: str) -> list[type[Rule]]:
        """Return the rules a code (``AIML101``) or family prefix (``AIML1``, ``AIML``) selects."""
        return [rule for rule in self if rule.code.startswith(selector)]

    def select(self, select: Sequence[str], ignore: Sequence[str]) -> RuleRegistry:
        """Return the rules that ``select`` picks (all when empty) minus those ``ignore`` names."""
        chosen = [rule for rule in self if not select or any(rule.code.startswith(s) for s in select)]
        return RuleRegistry(rule for rule in chosen if not any(rule.code.startswith(i) for i in ignore))

    def unknown_selectors(self, selectors: Iterable[str]) -> list[str]:
        return [selector for selector in selectors if not self.matching(selector)]

    def file_rules(self) -> list[type[FileRule]]:
        return [rule for rule in self if issubclass(rule, FileRule)]

    def repo_rules(self) -> list[type[RepoRule]]:
        return [rule for rule in self if issubclass(rule, RepoRule)]

    def artifact_rules(self) -> list[type[ArtifactRule]]:
        return [rule for rule in self if issubclass(rule, ArtifactRule)]


def builtin_rules() -> RuleRegistry:
    registry = RuleRegistry()
    for module_name in BUILTIN_RULE_MODULES:
        for rule in importlib.import_module(module_name).RULES:
            registry.add(rule)
    return registry


def validate_rule(rule: type[Rule]) -> None:
    """Check that a rule class carries every field of the rule contract."""
    name = getattr(rule, "__qualname__", repr(rule))
    for attribute in ("code", "slug", "category", "priority", "scope", "message", "impact", "fix", "effort"):
        if not getattr(rule, attribute, None):
            raise RuleError(f"rule {name} has no {attribute!r}; every rule declares code, slug, category, "
                            "priority, scope, message, impact, fix and effort")
    if rule.anti_pattern is not None and rule.anti_pattern not in ALL_ANTI_PATTERNS:
        raise RuleError(f"rule {name} names anti-pattern {rule.anti_pattern!r}, which the specification does not "
                        "list; use one of catalog.ALL_ANTI_PATTERNS word for word")
    unknown_smells = [smell for smell in rule.smells if smell not in ML_SMELLS]
    if unknown_smells:
        raise RuleError(f"rule {name} names smells {unknown_smells} that are not in catalog.ML_SMELLS")
    if not CODE_PATTERN.match(rule.code):
        raise RuleError(f"rule {name} has code {rule.code!r}; codes are 'AIML' and three digits, like 'AIML101'")
    if not SLUG_PATTERN.match(rule.slug):
        raise RuleError(f"rule {name} has slug {rule.slug!r}; slugs are lowercase words joined by '-'")
    if not issubclass(rule, (FileRule, RepoRule, ArtifactRule, DeclaredRule)):
        raise RuleError(f"rule {name} must subclass FileRule, RepoRule, ArtifactRule or DeclaredRule")
    if issubclass(rule, DeclaredRule) and rule.example_tests:
        return
    if not rule.INVALID or not rule.VALID:
        raise RuleError(f"rule {rule.code} ({name}) needs at least one VALID and one INVALID example")
