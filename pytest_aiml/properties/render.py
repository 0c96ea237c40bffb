"""Text renderings of generated inputs, short enough for a test failure report."""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_aiml.properties.compare import is_pandas

DEFAULT_LIMIT = 2000
"""Characters kept from a rendering before it is cut."""


def render_example(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """Render a generated input so that a reader can rebuild it.

    Arrays print every float at full precision (the shortest repr that
    round-trips) with their shape and dtype, and elide the middle of large
    arrays. Pairs from :func:`pytest_aiml.strategies.ordered_pairs` print as
    ``low`` and ``high``. Anything longer than ``limit`` characters is cut, with
    the number of characters left out.
    """
    return _shorten(_render(value), limit)


def render_pair(low: Any, high: Any, limit: int = DEFAULT_LIMIT) -> str:
    """Render the two inputs of a monotonicity example."""
    return _shorten(f"low = {_render(low)}\nhigh = {_render(high)}", limit)


def _render(value: Any) -> str:
    if isinstance(value, np.ndarray):
        with np.printoptions(threshold=200, edgeitems=3, linewidth=88, floatmode="unique"):
            return f"{value!r}  # shape {value.shape}, dtype {value.dtype}"
    if isinstance(value, np.generic):
        return f"np.{type(value).__name__}({value.item()!r})"
    if is_pandas(value) and hasattr(value, "columns"):
        dtypes = ", ".join(f"{name}: {dtype}" for name, dtype in value.dtypes.items())
        table = value.to_string(max_rows=20, max_cols=12)
        return f"DataFrame of shape {value.shape} ({dtypes})\n{table}"
    return repr(value)


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"
