"""The property checks: each takes one generated example and raises on a violation.

Every check calls the function under test on copies of the example, except
``no_mutation``, which needs the original, so that one function modifying its
input cannot make another property fail.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_aiml.properties.compare import (
    EXACT,
    default_tolerance,
    describe_difference,
    describe_non_finite,
    describe_out_of_range,
    is_pandas,
    output_dtypes,
    output_shape,
)
from pytest_aiml.properties.shape_rules import evaluate_dimension
from pytest_aiml.properties.spec import (
    FRAME_ROWS_DIMENSION,
    ArrayInput,
    FrameInput,
    InputSpec,
    PreprocessingSpec,
)


class PropertyViolation(Exception):
    """One example broke a property. ``explanation`` describes how, in a full sentence."""

    failure_kind = "violated"

    def __init__(self, explanation: str) -> None:
        super().__init__(explanation)
        self.explanation = explanation


class FunctionRaised(PropertyViolation):
    """The function under test (or its twin or inverse) raised on a valid input."""

    failure_kind = "raised"


@dataclass(frozen=True, slots=True)
class CheckTarget:
    """The spec and the callables that one property check exercises."""

    spec: PreprocessingSpec
    function: Callable[..., Any]
    twin: Callable[..., Any] | None = None
    inverse: Callable[..., Any] | None = None


def copy_input(value: Any) -> Any:
    """Return an independent copy of an input or output value."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if is_pandas(value):
        return value.copy(deep=True)
    return copy.deepcopy(value)


def dimension_sizes(input_spec: InputSpec, value: Any) -> dict[str, int]:
    """Return the size of each named input dimension in the generated ``value``."""
    if isinstance(input_spec, ArrayInput):
        return {
            entry: int(value.shape[position])
            for position, entry in enumerate(input_spec.shape)
            if isinstance(entry, str)
        }
    if isinstance(input_spec, FrameInput):
        return {FRAME_ROWS_DIMENSION: len(value)}
    return {}


# --- the properties ---------------------------------------------------------


def check_deterministic(target: CheckTarget, example: Any) -> None:
    first = _call(target.function, copy_input(example), target.spec.function)
    second = _call(target.function, copy_input(example), target.spec.function)
    difference = describe_difference(first, second, EXACT, reference_name="first call", candidate_name="second call")
    if difference:
        raise PropertyViolation(f"Two calls on the same input returned different outputs: {difference}.")


def check_finite(target: CheckTarget, example: Any) -> None:
    output = _call(target.function, copy_input(example), target.spec.function)
    problem = describe_non_finite(output)
    if problem:
        raise PropertyViolation(f"The input is finite but the output is not: {problem}.")


def check_shape(target: CheckTarget, example: Any) -> None:
    output = _call(target.function, copy_input(example), target.spec.function)
    actual = output_shape(output)
    if actual is None:
        raise PropertyViolation(f"The output ({type(output).__name__}) has no regular shape.")

    rule = target.spec.output.shape
    if rule == "same":
        expected = output_shape(example)
        because = "the input's shape"
    else:
        sizes = dimension_sizes(target.spec.input, example)
        expected = tuple(evaluate_dimension(entry, sizes) for entry in rule)
        sizes_text = ", ".join(f"{name}={size}" for name, size in sizes.items())
        because = f"the declared shape {list(rule)!r}" + (f" with {sizes_text}" if sizes_text else "")
    if actual != expected:
        raise PropertyViolation(f"The output shape is {actual}, but {because} is {expected}.")


def check_dtype(target: CheckTarget, example: Any) -> None:
    output = _call(target.function, copy_input(example), target.spec.function)
    actual = output_dtypes(output)
    declared = target.spec.output.dtype
    if declared == "same":
        expected = output_dtypes(example)
        because = "the input's dtype"
    else:
        expected = {column: declared for column in actual}
        because = "the declared dtype"
    if actual == expected:
        return
    if list(actual) == [""] and list(expected) == [""]:
        raise PropertyViolation(f"The output dtype is {actual['']}, but {because} is {expected['']}.")
    wrong = [column for column in actual if actual[column] != expected.get(column)]
    if wrong:
        column = wrong[0]
        raise PropertyViolation(
            f"Column {column!r} of the output has dtype {actual[column]}, but {because} is {expected.get(column)}."
        )
    raise PropertyViolation(f"The output columns {list(actual)!r} differ from the input columns {list(expected)!r}.")


def check_batch_invariant(target: CheckTarget, example: Any) -> None:
    name = target.spec.function
    batch_output = _call(target.function, copy_input(example), name)
    rows = len(example)
    output_rows = _row_count(batch_output)
    if output_rows != rows:
        raise PropertyViolation(
            f"The output has {output_rows} rows for a batch of {rows}, "
            "so it cannot match the rows transformed one by one."
        )
    for row in range(rows):
        alone = _call(target.function, _take_rows(example, row), name)
        difference = describe_difference(
            _take_rows(batch_output, row),
            alone,
            target.spec.tolerance,
            reference_name="in the batch",
            candidate_name="alone",
        )
        if difference:
            raise PropertyViolation(
                f"Row {row} transformed alone differs from the same row transformed in a batch of {rows}: {difference}."
            )


def check_no_mutation(target: CheckTarget, example: Any) -> None:
    before = copy_input(example)
    _call(target.function, example, target.spec.function)
    difference = describe_difference(before, example, EXACT, reference_name="before", candidate_name="after")
    if difference:
        raise PropertyViolation(f"The function modified its input in place: {difference}.")


def check_idempotent(target: CheckTarget, example: Any) -> None:
    name = target.spec.function
    once = _call(target.function, copy_input(example), name)
    twice = _call(target.function, copy_input(once), name)
    difference = describe_difference(
        once, twice, target.spec.tolerance, reference_name="applied once", candidate_name="applied twice"
    )
    if difference:
        raise PropertyViolation(f"Applying the function to its own output changed it: {difference}.")


def check_monotonic(target: CheckTarget, example: tuple[Any, Any]) -> None:
    low, high = example
    name = target.spec.function
    low_output = np.asarray(_call(target.function, copy_input(low), name))
    high_output = np.asarray(_call(target.function, copy_input(high), name))
    if low_output.shape != high_output.shape or low_output.dtype.kind not in "biuf":
        raise PropertyViolation(
            "The outputs for two inputs of one shape are not numeric arrays of one shape "
            f"({low_output.dtype}{low_output.shape} and {high_output.dtype}{high_output.shape}), so they have no order."
        )

    tolerance = target.spec.tolerance or default_tolerance(high_output.dtype)
    low_values = low_output.astype(np.float64)
    high_values = high_output.astype(np.float64)
    slack = tolerance.atol + tolerance.rtol * np.abs(high_values)
    increasing = target.spec.monotonic == "increasing"
    # NaN compares false either way, so NaN outputs are left to the `finite` property.
    broken = low_values > high_values + slack if increasing else low_values < high_values - slack
    if not broken.any():
        return
    index = tuple(int(i) for i in np.argwhere(broken)[0]) if broken.ndim else ()
    at = f" at index {index}" if index else ""
    raise PropertyViolation(
        f"The output is not {target.spec.monotonic}: low <= high element by element, but{at} "
        f"the output for low is {low_values[index].item()!r} and for high is {high_values[index].item()!r}."
    )


def check_bounded(target: CheckTarget, example: Any) -> None:
    output = _call(target.function, copy_input(example), target.spec.function)
    problem = describe_out_of_range(output, target.spec.output.min_value, target.spec.output.max_value)
    if problem:
        raise PropertyViolation(f"The output leaves the declared range: {problem}.")


def check_matches(target: CheckTarget, example: Any) -> None:
    assert target.twin is not None and target.spec.matches is not None
    training = _call(target.function, copy_input(example), target.spec.function)
    serving = _call(target.twin, copy_input(example), f"the serving twin {target.spec.matches}")
    difference = describe_difference(
        training, serving, target.spec.tolerance, reference_name="training", candidate_name="serving"
    )
    if difference:
        raise PropertyViolation(
            f"The serving twin {target.spec.matches} differs from {target.spec.function}: {difference}."
        )


def check_inverse(target: CheckTarget, example: Any) -> None:
    assert target.inverse is not None and target.spec.inverse is not None
    output = _call(target.function, copy_input(example), target.spec.function)
    restored = _call(target.inverse, output, f"the inverse {target.spec.inverse}")
    difference = describe_difference(
        example, restored, target.spec.tolerance, reference_name="input", candidate_name="round trip"
    )
    if difference:
        raise PropertyViolation(
            f"The inverse {target.spec.inverse} does not restore the input of {target.spec.function}: {difference}."
        )


PROPERTY_CHECKS: dict[str, Callable[[CheckTarget, Any], None]] = {
    "deterministic": check_deterministic,
    "finite": check_finite,
    "shape": check_shape,
    "dtype": check_dtype,
    "batch_invariant": check_batch_invariant,
    "no_mutation": check_no_mutation,
    "idempotent": check_idempotent,
    "monotonic": check_monotonic,
    "bounded": check_bounded,
    "matches": check_matches,
    "inverse": check_inverse,
}
"""The check for each property name of :data:`pytest_aiml.properties.spec.PROPERTY_NAMES`."""


# --- helpers ----------------------------------------------------------------


def _call(function: Callable[..., Any], value: Any, name: str) -> Any:
    """Call the function under test, turning its exceptions into a violation on this input."""
    try:
        return function(value)
    except Exception as error:  # any exception on a declared-valid input is a finding
        raise FunctionRaised(f"{name} raised {type(error).__name__}: {error}{_raised_at(error)}.") from error


def _raised_at(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if len(frames) < 2:  # the only frame is _call itself
        return ""
    last = frames[-1]
    return f" (at {last.filename}:{last.lineno})"


def _row_count(value: Any) -> int | None:
    shape = output_shape(value)
    return shape[0] if shape else None


def _take_rows(value: Any, row: int) -> Any:
    if is_pandas(value):
        return value.iloc[row : row + 1].copy()
    if isinstance(value, np.ndarray):
        return value[row : row + 1].copy()
    if isinstance(value, (list, tuple)):
        return copy.deepcopy(value[row : row + 1])
    return np.asarray(value)[row : row + 1].copy()
