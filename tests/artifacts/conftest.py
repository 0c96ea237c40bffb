"""Fixtures shared by the artifact tests.

Every malicious payload only creates the marker file if it is ever executed; the
``marker`` fixture asserts after each test that it never was.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def marker(tmp_path: Path):
    """Path that a payload would create if executed; checked to be absent after the test."""
    path = tmp_path / "PAYLOAD_EXECUTED"
    yield path
    assert not path.exists(), "a malicious payload was executed"
