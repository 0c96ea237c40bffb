"""Comparison of preprocessing outputs, with a one-sentence account of what differs.

Outputs may be NumPy arrays, anything :func:`numpy.asarray` converts (lists of
numbers, CPU tensors, Python scalars), strings, lists and dicts of those, or
pandas frames and series. pandas is never imported here: frames are recognised by
their module and read through their own methods.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from pytest_aiml.properties.spec import Tolerance

EXACT = Tolerance(rtol=0.0, atol=0.0)

# The same per-dtype defaults as the serving parity checks; float64 gets the
# tolerance of a careful re-implementation of the same arithmetic.
_DEFAULT_TOLERANCES = {
    "float64": Tolerance(rtol=1e-7, atol=1e-9),
    "float32": Tolerance(rtol=1e-3, atol=1e-5),
    "float16": Tolerance(rtol=1e-3, atol=1e-3),
}


def default_tolerance(dtype: np.dtype | str) -> Tolerance:
    """Return the tolerance used when a spec declares none: exact for integers and bools."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        dtype = np.dtype(f"float{dtype.itemsize * 4}")
    return _DEFAULT_TOLERANCES.get(dtype.name, EXACT)


def describe_difference(
    reference: Any,
    candidate: Any,
    tolerance: Tolerance | None = None,
    *,
    reference_name: str = "expected",
    candidate_name: str = "actual",
) -> str | None:
    """Describe how ``candidate`` differs from ``reference``, or return ``None`` when they agree.

    Numbers agree when ``|candidate - reference| <= atol + rtol * |reference|``;
    NaN agrees with NaN. ``tolerance`` ``None`` means :func:`default_tolerance` of
    the reference's dtype. Strings, dict keys, frame columns and shapes must be equal.
    """
    names = (reference_name, candidate_name)
    return _difference(reference, candidate, tolerance, names, where="")


def describe_non_finite(value: Any) -> str | None:
    """Describe the NaN and infinite numbers in ``value``, or return ``None`` when all are finite."""
    for where, values in numeric_leaves(value):
        bad = ~np.isfinite(values)
        if bad.any():
            return _first_of(bad, values, where, "not finite")
    return None


def describe_out_of_range(value: Any, min_value: float | None, max_value: float | None) -> str | None:
    """Describe the numbers in ``value`` outside ``[min_value, max_value]``, counting NaN as outside."""
    low = -np.inf if min_value is None else min_value
    high = np.inf if max_value is None else max_value
    for where, values in numeric_leaves(value):
        real = values.real if values.dtype.kind == "c" else values
        bad = np.isnan(real.astype(np.float64)) | (real < low) | (real > high)
        if bad.any():
            return _first_of(bad, values, where, f"outside [{_number(low)}, {_number(high)}]")
    return None


def output_shape(value: Any) -> tuple[int, ...] | None:
    """Return the shape of an output, or ``None`` for a ragged or shapeless value."""
    if is_pandas(value):
        return tuple(value.shape)
    try:
        return tuple(np.shape(value))
    except ValueError:
        return None


def output_dtypes(value: Any) -> dict[str, str]:
    """Return the dtype names of an output: one per column of a frame, else under the key ``""``."""
    if is_pandas(value) and hasattr(value, "columns"):
        return {str(name): str(dtype) for name, dtype in value.dtypes.items()}
    if is_pandas(value):
        return {"": str(value.dtype)}
    return {"": str(np.asarray(value).dtype)}


def numeric_leaves(value: Any, where: str = "") -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(location, array)`` for every numeric part of ``value``, skipping text."""
    if is_pandas(value):
        if hasattr(value, "columns"):
            for name in value.columns:
                yield from numeric_leaves(value[name].to_numpy(), f"{where} in column {name!r}")
        else:
            yield from numeric_leaves(value.to_numpy(), where)
        return
    if isinstance(value, (str, bytes)):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from numeric_leaves(item, f"{where} in key {key!r}")
        return
    values = _numeric_array(value)
    if values is not None:
        yield where, values
    elif isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            yield from numeric_leaves(item, f"{where} in item {position}")


def is_pandas(value: Any) -> bool:
    """Tell whether ``value`` is a pandas frame or series, without importing pandas."""
    # pandas 3 reports its public classes' module as "pandas", older versions as "pandas.core.frame".
    return type(value).__module__.partition(".")[0] == "pandas" and hasattr(value, "to_numpy")


# --- differences ------------------------------------------------------------


def _difference(
    reference: Any, candidate: Any, tolerance: Tolerance | None, names: tuple[str, str], where: str
) -> str | None:
    if is_pandas(reference) or is_pandas(candidate):
        return _pandas_difference(reference, candidate, tolerance, names, where)
    if isinstance(reference, (str, bytes)) or isinstance(candidate, (str, bytes)):
        if type(reference) is type(candidate) and reference == candidate:
            return None
        return f"{_at(where)}{names[0]} {_short_repr(reference)}, {names[1]} {_short_repr(candidate)}"
    if isinstance(reference, Mapping) and isinstance(candidate, Mapping):
        return _mapping_difference(reference, candidate, tolerance, names, where)

    reference_array = _numeric_array(reference)
    candidate_array = _numeric_array(candidate)
    if reference_array is not None and candidate_array is not None:
        return _array_difference(reference_array, candidate_array, tolerance, names, where)
    if isinstance(reference, (list, tuple)) and isinstance(candidate, (list, tuple)):
        if len(reference) != len(candidate):
            return f"{_at(where)}{names[0]} has {len(reference)} items, {names[1]} has {len(candidate)}"
        for position, (left, right) in enumerate(zip(reference, candidate)):
            found = _difference(left, right, tolerance, names, f"{where} in item {position}")
            if found:
                return found
        return None
    if _equal(reference, candidate):
        return None
    return f"{_at(where)}{names[0]} {_short_repr(reference)}, {names[1]} {_short_repr(candidate)}"


def _mapping_difference(
    reference: Mapping[Any, Any],
    candidate: Mapping[Any, Any],
    tolerance: Tolerance | None,
    names: tuple[str, str],
    where: str,
) -> str | None:
    if list(reference) != list(candidate):
        return f"{_at(where)}{names[0]} has keys {list(reference)!r}, {names[1]} has keys {list(candidate)!r}"
    for key in reference:
        found = _difference(reference[key], candidate[key], tolerance, names, f"{where} in key {key!r}")
        if found:
            return found
    return None


def _pandas_difference(
    reference: Any, candidate: Any, tolerance: Tolerance | None, names: tuple[str, str], where: str
) -> str | None:
    if type(reference) is not type(candidate):
        kinds = f"{names[0]} is a {type(reference).__name__}, {names[1]} is a {type(candidate).__name__}"
        return f"{_at(where)}{kinds}"
    if not hasattr(reference, "columns"):
        return _difference(reference.to_numpy(), candidate.to_numpy(), tolerance, names, where)
    # The index is not compared: a row transformed alone keeps its label, and a
    # serving twin may reset it without changing any value.
    if list(reference.columns) != list(candidate.columns):
        columns = f"{names[0]} has columns {list(reference.columns)!r}, {names[1]} has {list(candidate.columns)!r}"
        return f"{_at(where)}{columns}"
    for name in reference.columns:
        found = _difference(
            reference[name].to_numpy(), candidate[name].to_numpy(), tolerance, names, f"{where} in column {name!r}"
        )
        if found:
            return found
    return None


def _array_difference(
    reference: np.ndarray, candidate: np.ndarray, tolerance: Tolerance | None, names: tuple[str, str], where: str
) -> str | None:
    if reference.shape != candidate.shape:
        return f"{_at(where)}{names[0]} has shape {reference.shape}, {names[1]} has shape {candidate.shape}"
    tolerance = default_tolerance(reference.dtype) if tolerance is None else tolerance
    kinds = {reference.dtype.kind, candidate.dtype.kind}
    # Integers are compared as integers when no tolerance applies, because int64
    # values above 2**53 lose their low bits in float64.
    if "b" in kinds or (kinds <= {"i", "u"} and tolerance == EXACT):
        agree = np.asarray(reference == candidate)
    else:
        agree = np.isclose(
            _as_float(candidate), _as_float(reference), rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True
        )
    if agree.all():
        return None

    reference_values = _as_float(reference)
    candidate_values = _as_float(candidate)
    # A NaN on one side only is the most telling disagreement, so it is shown_index first.
    one_sided_nan = ~agree & (np.isnan(reference_values) ^ np.isnan(candidate_values))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        absolute = np.abs(candidate_values - reference_values)
        relative = absolute / np.abs(reference_values)
    numeric = ~agree & ~one_sided_nan
    if one_sided_nan.any():
        shown_index = tuple(int(i) for i in np.argwhere(one_sided_nan)[0]) if agree.ndim else ()
    else:
        # inf - inf is NaN, and such a pair differs without bound.
        ranked = np.where(numeric, np.where(np.isnan(absolute), np.inf, absolute), -1.0)
        shown_index = tuple(int(i) for i in np.unravel_index(int(np.argmax(ranked)), agree.shape))

    count = int((~agree).sum())
    lead = "the first NaN on one side only is" if one_sided_nan.any() else "the largest difference is"
    location = f"; {lead} at index {shown_index}:" if shown_index else ":"
    text = (
        f"{count} of {agree.size} values differ{where}{location} {names[0]} {_number(reference[shown_index])}, "
        f"{names[1]} {_number(candidate[shown_index])}"
    )
    if numeric.any():
        # inf/inf and 0/0 give NaN; both mean the values differ without bound.
        largest_relative = np.max(np.where(np.isnan(relative[numeric]), np.inf, relative[numeric]))
        text += (
            f" (max absolute difference {_number(np.max(absolute[numeric]))}, "
            f"max relative difference {_number(largest_relative)}"
        )
    else:
        text += " (every difference is a NaN on one side only"
    if one_sided_nan.any() and numeric.any():
        text += f"; {int(one_sided_nan.sum())} values are NaN on one side only"
    return text + f"; rtol={tolerance.rtol:g}, atol={tolerance.atol:g})"


# --- helpers ----------------------------------------------------------------


def _numeric_array(value: Any) -> np.ndarray | None:
    if not isinstance(value, (np.ndarray, np.generic, int, float, complex, list, tuple)) and not hasattr(
        value, "__array__"
    ):
        return None
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged lists and objects NumPy cannot hold
        return None
    return array if array.dtype.kind in "biufc" else None


def _as_float(values: np.ndarray) -> np.ndarray:
    return values if values.dtype.kind in "fc" else values.astype(np.float64)


def _first_of(bad: np.ndarray, values: np.ndarray, where: str, condition: str) -> str:
    first = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
    index = f" at index {first}" if first else ""
    count = int(bad.sum())
    return f"{count} of {bad.size} values{where} are {condition}; the first is {_number(values[first])}{index}"


def _equal(left: Any, right: Any) -> bool:
    try:
        return bool(left == right)
    except (TypeError, ValueError):  # objects whose == does not return one truth value
        return repr(left) == repr(right)


def _number(value: Any) -> str:
    item = value.item() if isinstance(value, (np.ndarray, np.generic)) else value
    return repr(item)


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _at(where: str) -> str:
    return f"{where.strip()}: " if where else ""
