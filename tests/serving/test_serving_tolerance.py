"""Default tolerances and the elementwise comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_aiml.serving.spec import Tolerance
from pytest_aiml.serving.tolerance import (
    EXACT,
    compare_outputs,
    default_tolerance,
    tolerance_for,
)

FLOAT32 = Tolerance(rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("float32", Tolerance(1e-3, 1e-5)),
        ("float16", Tolerance(1e-3, 1e-3)),
        ("bfloat16", Tolerance(1.6e-2, 1e-3)),
        ("int64", EXACT),
        ("int8", EXACT),
        ("uint8", EXACT),
        ("bool", EXACT),
    ],
)
def test_default_per_dtype(dtype, expected):
    assert default_tolerance(dtype) == expected


def test_unknown_dtype_has_no_default():
    with pytest.raises(ValueError, match="complex64"):
        default_tolerance("complex64")


def test_override_wins_over_default():
    override = Tolerance(1e-2, 1e-4)

    assert tolerance_for("logits", "float32", {"logits": override}) == override
    assert tolerance_for("probs", "float32", {"logits": override}) == FLOAT32


def test_identical_arrays_pass():
    values = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)

    result = compare_outputs(values, values.copy(), FLOAT32)

    assert result.passed
    assert result.max_abs_error == 0.0
    assert result.max_abs_index is None
    assert result.rtol_needed == 0.0
    assert result.atol_needed == 0.0


def test_figures_and_positions():
    expected = np.array([[1.0, 2.0], [4.0, -8.0]])
    actual = np.array([[1.0, 2.1], [4.0, -8.4]])

    result = compare_outputs(actual, expected, FLOAT32)

    assert not result.passed
    assert result.max_abs_error == pytest.approx(0.4)
    assert result.max_abs_index == (1, 1)
    assert result.max_rel_error == pytest.approx(0.05)
    assert result.max_rel_index == (0, 1)
    assert result.mismatched == 2
    assert result.total == 4
    assert result.rtol_needed == pytest.approx(max((0.1 - 1e-5) / 2, (0.4 - 1e-5) / 8))
    assert result.atol_needed == pytest.approx(max(0.1 - 1e-3 * 2, 0.4 - 1e-3 * 8))


def test_needed_tolerances_pass_and_smaller_fail():
    rng = np.random.default_rng(1)
    expected = rng.standard_normal((5, 7))
    actual = expected + rng.normal(0, 0.01, size=expected.shape)
    result = compare_outputs(actual, expected, FLOAT32)

    rtol_fit = Tolerance(result.rtol_needed * (1 + 1e-9), FLOAT32.atol)
    atol_fit = Tolerance(FLOAT32.rtol, result.atol_needed * (1 + 1e-9))
    assert compare_outputs(actual, expected, rtol_fit).passed
    assert compare_outputs(actual, expected, atol_fit).passed
    assert not compare_outputs(actual, expected, Tolerance(result.rtol_needed * 0.99, FLOAT32.atol)).passed
    assert not compare_outputs(actual, expected, Tolerance(FLOAT32.rtol, result.atol_needed * 0.99)).passed


def test_boundary_is_inclusive():
    expected = np.array([100.0])
    actual = expected + (1e-5 + 1e-3 * 100.0) * 0.999999

    assert compare_outputs(actual, expected, FLOAT32).passed


def test_zero_reference_needs_infinite_rtol():
    result = compare_outputs(np.array([0.0, 1.0]), np.array([1e-3, 0.0]), FLOAT32)

    assert result.max_rel_error == math.inf
    assert result.rtol_needed == math.inf
    assert result.atol_needed == pytest.approx(1.0)


def test_nan_in_same_position_matches():
    values = np.array([1.0, np.nan, np.inf, -np.inf])

    assert compare_outputs(values.copy(), values, FLOAT32).passed


@pytest.mark.parametrize(
    ("actual", "expected", "index"),
    [
        ([1.0, np.nan], [1.0, 2.0], (1,)),
        ([1.0, 2.0], [np.nan, 2.0], (0,)),
        ([np.inf, 2.0], [-np.inf, 2.0], (0,)),
        ([1.0, np.inf], [1.0, 1e308], (1,)),
        ([np.nan, 2.0], [np.inf, 2.0], (0,)),
    ],
)
def test_nonfinite_position_mismatch_fails(actual, expected, index):
    result = compare_outputs(np.array(actual), np.array(expected), FLOAT32)

    assert not result.passed
    assert result.nonfinite_mismatched == 1
    assert result.first_nonfinite_index == index
    assert result.rtol_needed == math.inf
    assert result.atol_needed == math.inf


def test_integers_are_exact():
    expected = np.array([3, 4, 5], dtype=np.int64)

    assert compare_outputs(expected.copy(), expected, EXACT).passed
    result = compare_outputs(np.array([3, 4, 6], dtype=np.int64), expected, EXACT)
    assert not result.passed
    assert result.max_abs_index == (2,)
    assert result.mismatched == 1


def test_large_integers_compared_exactly():
    expected = np.array([2**53 + 1], dtype=np.int64)

    result = compare_outputs(np.array([2**53], dtype=np.int64), expected, EXACT)

    assert not result.passed


def test_booleans_are_exact():
    result = compare_outputs(np.array([True, False]), np.array([True, True]), EXACT)

    assert not result.passed
    assert result.mismatched == 1


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"\[2\] and \[3\]"):
        compare_outputs(np.zeros(2), np.zeros(3), FLOAT32)


def test_empty_and_scalar_outputs():
    assert compare_outputs(np.zeros((0, 3)), np.zeros((0, 3)), FLOAT32).passed
    result = compare_outputs(np.array(np.nan), np.array(1.0), FLOAT32)
    assert result.first_nonfinite_index == ()


def test_to_dict_uses_lists():
    result = compare_outputs(np.array([[1.0, 2.5]]), np.array([[1.0, 2.0]]), FLOAT32)

    data = result.to_dict()

    assert data["max_abs_index"] == [0, 1]
    assert data["rtol"] == 1e-3
    assert data["passed"] is False
