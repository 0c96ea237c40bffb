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
    """Change the report document (``{"aiml_analysis": ...}``) in place before it is written.

    Keep it valid against ``pytest_aiml/report/schema.json``: new keys go under names
    that start with ``x_``.
    """


@pytest.hookspec(firstresult=True)
def pytest_aiml_load_model(spec: Any, root: Any) -> tuple[Any, Any] | None:
    """Return ``(torch_model, onnx_session)`` for a declared model, or None to let pytest-aiml load it.

    ``spec`` is a :class:`pytest_aiml.serving.spec.ModelSpec`; either element may be
    None to keep pytest-aiml's own loader for that side. Use it for models that need
    custom construction, remote weights already cached, or a specific provider.
    """


@pytest.hookspec(firstresult=True)
def pytest_aiml_sample_inputs(spec: Any, root: Any) -> Any:
    """Return real input batches for a declared model's parity check, or None.

    The batches are added to the generated ones: an iterable of batches, each a
    mapping of input name to array, a sequence of arrays in input order, or one array
    for a single-input model (NumPy arrays, Torch tensors or nested lists).
    """
