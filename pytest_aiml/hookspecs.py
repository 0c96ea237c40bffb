"""Hooks through which a conftest.py or another plugin extends pytest-aiml."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_aiml.engine.registry import RuleRegistry


@pytest.hookspec
def pytest_aiml_register_rules(registry: RuleRegistry) -> None:
    """Add rules to ``registry`` with ``registry.add(RuleClass)``.

    A rule follows the same contract as the built-in ones: code, slug, category,
    priority, message, impact, fix, effort and VALID / INVALID examples.
    """


@pytest.hookspec
def pytest_aiml_amend_report(report: dict[str, Any]) -> None:
    """Change the ``aiml_analysis`` document in place before it is validated and written."""
