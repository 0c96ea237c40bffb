"""Output comparison, example rendering and output shape expressions."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_aiml.properties.compare import (
    EXACT,
    default_tolerance,
    describe_difference,
    describe_non_finite,
    describe_out_of_range,
    output_dtypes,
    output_shape,
)
from pytest_aiml.properties.render import render_example, render_pair
from pytest_aiml.properties.shape_rules import ShapeExpressionError, evaluate_dimension, expression_names
from pytest_aiml.properties.spec import Tolerance


def test_equal_arrays_agree():
    values = np.array([[1.0, np.nan], [np.inf, -2.0]])
    assert describe_difference(values, values.copy(), EXACT) is None


def test_difference_within_tolerance_agrees():
    reference = np.array([100.0, 0.0])
    candidate = np.array([100.0 + 1e-6, 1e-10])
    assert describe_difference(reference, candidate, Tolerance(rtol=1e-8, atol=1e-9)) is None


def test_difference_reports_largest_and_tolerance():
    reference = np.array([[1.0, 2.0], [3.0, 4.0]])
    candidate = np.array([[1.0, 2.5], [3.0, 4.1]])
    text = describe_difference(
        reference, candidate, Tolerance(rtol=0.0, atol=0.01), reference_name="training", candidate_name="serving"
    )
    assert text.startswith("2 of 4 values differ; the largest difference is at index (0, 1): training 2.0, serving 2.5")
    assert "max absolute difference 0.5" in text
    assert "max relative difference 0.25" in text
    assert text.endswith("rtol=0, atol=0.01)")


def test_one_sided_nan_shown_first():
    text = describe_difference(np.array([1.0, 2.0]), np.array([5.0, np.nan]), EXACT)
    assert "the first NaN on one side only is at index (1,): expected 2.0, actual nan" in text
    assert "1 values are NaN on one side only" in text


def test_shape_mismatch_reported():
    text = describe_difference(np.zeros((2, 3)), np.zeros((2, 4)))
    assert text == "expected has shape (2, 3), actual has shape (2, 4)"


def test_integers_compared_exactly():
    big = np.array([2**60], dtype=np.int64)
    assert describe_difference(big, big + 1, None) is not None
    assert describe_difference(big, big.copy(), None) is None


def test_strings_lists_and_dicts_compared():
    assert describe_difference("abc", "abc") is None
    assert describe_difference("abc", "abd") == "expected 'abc', actual 'abd'"
    assert describe_difference(["a", "b"], ["a"]) == "expected has 2 items, actual has 1"
    assert describe_difference({"ids": [1, 2]}, {"ids": [1, 3]}).startswith("1 of 2 values differ in key 'ids'")
    assert describe_difference({"a": 1}, {"b": 1}) == "expected has keys ['a'], actual has keys ['b']"


def test_default_tolerance_by_dtype():
    assert default_tolerance("float64") == Tolerance(rtol=1e-7, atol=1e-9)
    assert default_tolerance(np.float32) == Tolerance(rtol=1e-3, atol=1e-5)
    assert default_tolerance("complex128") == default_tolerance("float64")
    assert default_tolerance("int64") == EXACT
    assert default_tolerance("bool") == EXACT


def test_non_finite_values_located():
    assert describe_non_finite(np.array([1.0, 2.0])) is None
    assert describe_non_finite([np.array([0.0]), "text"]) is None
    text = describe_non_finite({"scores": np.array([[0.0, np.inf], [np.nan, 1.0]])})
    assert text == "2 of 4 values in key 'scores' are not finite; the first is inf at index (0, 1)"


def test_out_of_range_counts_nan():
    assert describe_out_of_range(np.array([0.0, 1.0]), 0.0, 1.0) is None
    assert describe_out_of_range(np.array([0.5, np.nan]), 0.0, 1.0) == (
        "1 of 2 values are outside [0.0, 1.0]; the first is nan at index (1,)"
    )
    assert describe_out_of_range(np.float64(-3.0), None, 0.0) is None
    assert describe_out_of_range(3, None, 2) == "1 of 1 values are outside [-inf, 2]; the first is 3"


def test_output_shape_and_dtypes():
    assert output_shape(np.zeros((2, 3))) == (2, 3)
    assert output_shape([[1, 2], [3]]) is None
    assert output_shape(1.5) == ()
    assert output_dtypes(np.zeros(2, dtype=np.float32)) == {"": "float32"}
    assert output_dtypes(1.5) == {"": "float64"}


def test_render_array_with_shape_and_dtype():
    text = render_example(np.array([[0.1, 2.0]], dtype=np.float32))
    assert text == "array([[0.1, 2. ]], dtype=float32)  # shape (1, 2), dtype float32"


def test_render_large_array_elided():
    text = render_example(np.arange(10_000.0).reshape(100, 100))
    assert "..." in text
    assert text.endswith("# shape (100, 100), dtype float64")
    assert len(text) < 2000


def test_render_cuts_long_text():
    text = render_example("x" * 5000, limit=100)
    assert text.startswith("'xxx")
    assert text.endswith("... (4902 more characters)")


def test_render_scalars_and_pairs():
    assert render_example(np.float32(0.5)) == "np.float32(0.5)"
    assert render_example(0.1) == "0.1"
    assert render_pair(1.0, 2.0) == "low = 1.0\nhigh = 2.0"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [(7, 7), ("batch", 3), ("features * 2", 8), ("(features + 1) // 2 - batch", -1), ("batch*batch", 9)],
)
def test_shape_expression_evaluates(entry, expected):
    assert evaluate_dimension(entry, {"batch": 3, "features": 4}) == expected


def test_shape_expression_names_in_order():
    assert expression_names("features * batch + features") == ("features", "batch")


@pytest.mark.parametrize("expression", ["batch ** 2", "batch / 2", "len(batch)", "batch.size", "1.5 * batch", "batch +", "-batch"])
def test_shape_expression_rejects_other_syntax(expression):
    with pytest.raises(ShapeExpressionError):
        expression_names(expression)
