"""Tolerances and the elementwise comparison of an ONNX output with its Torch reference.

An element passes when ``|onnx - torch| <= atol + rtol * |torch|`` (the Torch output
is the reference, as in ``numpy.isclose(onnx, torch)``). NaN must be NaN in both
outputs and an infinity must be the same infinity in both, at the same position.

Default tolerances per dtype (:data:`DEFAULT_TOLERANCES`):

========== ======== ========
dtype      rtol     atol
========== ======== ========
float64    1e-7     1e-9
float32    1e-3     1e-5
float16    1e-3     1e-3
bfloat16   1.6e-2   1e-3
integers   0        0 (exact)
bool       0        0 (exact)
========== ======== ========

The float32 rtol of 1e-3 leaves room for the kernel and fusion differences between
Torch and onnxruntime, which are well above float32 epsilon (1.2e-7). bfloat16
keeps 8 significand bits, so its epsilon is 2**-7 = 7.8e-3 and one rounding step
each side gives 1.6e-2.

:func:`compare_outputs` returns a :class:`Comparison` with the maximum absolute and
relative error, where each occurred, and the smallest ``rtol`` (at the given
``atol``) and ``atol`` (at the given ``rtol``) that would have passed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_aiml.serving.spec import Tolerance

__all__ = [
    "DEFAULT_TOLERANCES",
    "EXACT",
    "Comparison",
    "compare_outputs",
    "default_tolerance",
    "is_exact_dtype",
    "tolerance_for",
]

EXACT = Tolerance(rtol=0.0, atol=0.0)

DEFAULT_TOLERANCES: Mapping[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-7, atol=1e-9),
    "float32": Tolerance(rtol=1e-3, atol=1e-5),
    "float16": Tolerance(rtol=1e-3, atol=1e-3),
    "bfloat16": Tolerance(rtol=1.6e-2, atol=1e-3),
}


def is_exact_dtype(dtype: str) -> bool:
    """Whether outputs of ``dtype`` (integers and bool) must match exactly."""
    return dtype == "bool" or dtype.startswith(("int", "uint"))


def default_tolerance(dtype: str) -> Tolerance:
    """Return the default tolerance for a dtype name such as ``"float32"``.

    Raises ``ValueError`` for a dtype that has no default (complex types, strings).
    """
    if is_exact_dtype(dtype):
        return EXACT
    try:
        return DEFAULT_TOLERANCES[dtype]
    except KeyError:
        raise ValueError(
            f"no default tolerance for dtype {dtype!r}; set tolerance = "
            "{ <output> = { rtol = ..., atol = ... } } for this output"
        ) from None


def tolerance_for(output: str, dtype: str, overrides: Mapping[str, Tolerance]) -> Tolerance:
    """Return the override for ``output`` when one is declared, else the dtype default."""
    if output in overrides:
        return overrides[output]
    return default_tolerance(dtype)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Elementwise comparison of one output (``actual``) with its reference.

    Indexes are positions in the output array (``None`` when the output is empty
    or the figure is 0). ``max_rel_error`` is ``inf`` where the reference is 0 and
    the difference is not. ``rtol_needed`` is the smallest rtol that passes at the
    given atol, ``inf`` when no rtol can (a difference above atol where the
    reference is 0). ``atol_needed`` is the smallest atol that passes at the given
    rtol. Both are ``inf`` when NaN or infinities differ in position, because no
    tolerance fixes that. Figures cover finite elements present in both outputs.
    """

    passed: bool
    tolerance: Tolerance
    max_abs_error: float
    max_abs_index: tuple[int, ...] | None
    max_rel_error: float
    max_rel_index: tuple[int, ...] | None
    mismatched: int
    total: int
    nonfinite_mismatched: int
    first_nonfinite_index: tuple[int, ...] | None
    rtol_needed: float
    atol_needed: float

    def to_dict(self) -> dict[str, Any]:
        """Return the comparison as builtins (infinite floats stay ``float('inf')``)."""
        return {
            "passed": self.passed,
            "rtol": self.tolerance.rtol,
            "atol": self.tolerance.atol,
            "max_abs_error": self.max_abs_error,
            "max_abs_index": _index_list(self.max_abs_index),
            "max_rel_error": self.max_rel_error,
            "max_rel_index": _index_list(self.max_rel_index),
            "mismatched": self.mismatched,
            "total": self.total,
            "nonfinite_mismatched": self.nonfinite_mismatched,
            "first_nonfinite_index": _index_list(self.first_nonfinite_index),
            "rtol_needed": self.rtol_needed,
            "atol_needed": self.atol_needed,
        }


def compare_outputs(actual: Any, expected: Any, tolerance: Tolerance) -> Comparison:
    """Compare ``actual`` (ONNX) with ``expected`` (Torch) elementwise under ``tolerance``.

    Both must have the same shape; a ``ValueError`` names both shapes otherwise.
    Values are compared in float64, so a float16 or bfloat16 output is widened
    first. Integer and boolean outputs with an exact tolerance must be equal.
    """
    actual_array = np.asarray(actual)
    expected_array = np.asarray(expected)
    if actual_array.shape != expected_array.shape:
        raise ValueError(
            f"cannot compare outputs of shape {list(actual_array.shape)} and "
            f"{list(expected_array.shape)}; compare shapes first"
        )
    total = int(expected_array.size)
    if total == 0:
        return Comparison(True, tolerance, 0.0, None, 0.0, None, 0, 0, 0, None, 0.0, 0.0)

    # NOTE: int64 values above 2**53 lose precision in float64. The exact check
    # below uses the original arrays, so only the error figures are affected.
    got = actual_array.astype(np.float64)
    ref = expected_array.astype(np.float64)

    nonfinite_mismatch = _nonfinite_mismatch(got, ref)
    both_finite = np.isfinite(got) & np.isfinite(ref)

    # Non-finite positions are masked out of the figures, so the invalid and
    # overflow warnings of their arithmetic are expected and silenced.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        diff = np.where(both_finite, np.abs(got - ref), 0.0)
        magnitude = np.where(both_finite, np.abs(ref), 0.0)
        relative = np.where(diff == 0.0, 0.0, diff / magnitude)

    allowed = tolerance.atol + tolerance.rtol * magnitude
    if tolerance == EXACT and _is_exact_kind(actual_array) and _is_exact_kind(expected_array):
        outside = actual_array != expected_array
    else:
        outside = diff > allowed
    outside = outside | nonfinite_mismatch

    mismatched = int(np.count_nonzero(outside))
    nonfinite_count = int(np.count_nonzero(nonfinite_mismatch))
    max_abs_index = _argmax_index(diff)
    max_rel_index = _argmax_index(relative)

    return Comparison(
        passed=mismatched == 0,
        tolerance=tolerance,
        max_abs_error=float(diff.max()),
        max_abs_index=max_abs_index,
        max_rel_error=float(relative.max()),
        max_rel_index=max_rel_index,
        mismatched=mismatched,
        total=total,
        nonfinite_mismatched=nonfinite_count,
        first_nonfinite_index=_first_index(nonfinite_mismatch),
        rtol_needed=math.inf if nonfinite_count else _rtol_needed(diff, magnitude, tolerance.atol),
        atol_needed=math.inf if nonfinite_count else _atol_needed(diff, magnitude, tolerance.rtol),
    )


def _nonfinite_mismatch(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    # NaN matches NaN; +inf matches +inf and -inf matches -inf. A finite value
    # against a non-finite one is a mismatch in either direction.
    got_nan = np.isnan(got)
    ref_nan = np.isnan(ref)
    got_inf = np.isinf(got)
    ref_inf = np.isinf(ref)
    nan_mismatch = got_nan != ref_nan
    inf_mismatch = (got_inf | ref_inf) & ~(got_inf & ref_inf & (np.sign(got) == np.sign(ref)))
    return nan_mismatch | (inf_mismatch & ~got_nan & ~ref_nan)


def _rtol_needed(diff: np.ndarray, magnitude: np.ndarray, atol: float) -> float:
    excess = diff - atol
    over = excess > 0
    if not over.any():
        return 0.0
    if (magnitude[over] == 0).any():
        return math.inf
    return float((excess[over] / magnitude[over]).max())


def _atol_needed(diff: np.ndarray, magnitude: np.ndarray, rtol: float) -> float:
    return float(max((diff - rtol * magnitude).max(), 0.0))


def _argmax_index(values: np.ndarray) -> tuple[int, ...] | None:
    flat = int(np.argmax(values))
    if values.flat[flat] == 0:
        return None
    return tuple(int(i) for i in np.unravel_index(flat, values.shape))


def _first_index(mask: np.ndarray) -> tuple[int, ...] | None:
    if mask.ndim == 0:
        return () if bool(mask) else None
    positions = np.argwhere(mask)
    if positions.size == 0:
        return None
    return tuple(int(i) for i in positions[0])


def _is_exact_kind(array: np.ndarray) -> bool:
    return array.dtype.kind in "biu"


def _index_list(index: tuple[int, ...] | None) -> list[int] | None:
    return None if index is None else list(index)
