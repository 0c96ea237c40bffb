"""Waivers in the pytest adapter: the ``aiml_waive`` marker on items."""

from __future__ import annotations

import pytest

from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.engine.registry import RuleRegistry
from pytest_aiml.engine.waivers import Waiver, marker_waiver


class InvalidMarker(Exception):
    """An ``aiml_waive`` marker that cannot be used as written."""


def marker_waivers(item: pytest.Item, registry: RuleRegistry) -> list[Waiver]:
    """Read every ``aiml_waive`` marker of ``item`` (from the item, its class, module or conftest)."""
    waivers = []
    for mark in item.iter_markers("aiml_waive"):
        try:
            waivers.append(marker_waiver(mark.args, mark.kwargs, item.nodeid, lambda code: bool(registry.matching(code))))
        except ConfigError as error:
            raise InvalidMarker(f"invalid aiml_waive marker on {item.nodeid}: {error.problem} ({error.fix})") from None
    return waivers
