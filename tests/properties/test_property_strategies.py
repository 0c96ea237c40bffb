"""The public strategies in ``pytest_aiml.strategies``, including a user-written property test."""

from __future__ import annotations

import importlib.util
import math
import textwrap

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis.errors import InvalidArgument

from pytest_aiml import strategies
from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.properties.spec import parse_input_spec
from tests.properties import sample_preprocessing

HAS_PANDAS = importlib.util.find_spec("pandas") is not None
FEW = settings(max_examples=25, deadline=None, derandomize=True)
# find() would otherwise save examples under .hypothesis/ in the working directory.
FIND = settings(derandomize=True, database=None)


# This is the documented use: a repository's own property test over the inputs
# it declares, here that clipping keeps every value inside the training percentiles.
@FEW
@given(
    strategies.array_inputs(
        "float64", ["batch", 4], dims={"batch": (1, 8)}, min_value=-1e4, max_value=1e4
    )
)
def test_user_property_clip_keeps_training_range(features):
    clipped = sample_preprocessing.clip_outliers(features)

    assert clipped.shape == features.shape
    assert np.all(clipped >= sample_preprocessing.CLIP_LOW)
    assert np.all(clipped <= sample_preprocessing.CLIP_HIGH)


@FEW
@given(strategies.array_inputs("float32", ["batch", "width", "batch"], dims={"batch": (2, 3), "width": (0, 2)}, min_value=0.1, max_value=0.3))
def test_array_inputs_follow_spec(array):
    assert array.dtype == np.float32
    assert array.ndim == 3
    assert array.shape[0] == array.shape[2]
    assert 2 <= array.shape[0] <= 3
    assert 0 <= array.shape[1] <= 2
    assert np.all((array >= np.float32(0.1)) & (array <= np.float32(0.3)))


@FEW
@given(strategies.array_inputs("int8", [3], min_value=-2, max_value=2))
def test_integer_arrays_respect_bounds(array):
    assert array.dtype == np.int8
    assert array.shape == (3,)
    assert np.all((array >= -2) & (array <= 2))


@FEW
@given(strategies.array_inputs("float64", ["batch", 2]))
def test_arrays_are_finite_by_default(array):
    assert np.all(np.isfinite(array))


def test_nan_and_infinity_generated_when_allowed():
    values = strategies.array_inputs("float64", [4], min_value=-1, max_value=1, allow_nan=True, allow_infinity=True)
    with_nan = find(values, lambda array: np.isnan(array).any(), settings=FIND)
    with_infinity = find(values, lambda array: np.isinf(array).any(), settings=FIND)
    assert np.isnan(with_nan).any()
    assert np.isinf(with_infinity).any()
    finite = find(values, lambda array: np.isfinite(array).all() and (np.abs(array) > 0.5).any(), settings=FIND)
    assert np.all(np.abs(finite) <= 1)


@FEW
@given(strategies.scalar_inputs(min_value=-3, max_value=3))
def test_float64_scalars_are_python_floats(value):
    assert type(value) is float
    assert -3 <= value <= 3


@FEW
@given(strategies.scalar_inputs("float16", min_value=-1, max_value=1))
def test_other_scalars_are_numpy_scalars(value):
    assert type(value) is np.float16


@FEW
@given(strategies.text_inputs(min_size=1, max_size=5, alphabet="ab "))
def test_text_uses_alphabet(text):
    assert 1 <= len(text) <= 5
    assert set(text) <= set("ab ")


@FEW
@given(strategies.text_inputs(max_size=8, codec="ascii"))
def test_text_respects_codec(text):
    text.encode("ascii")


@FEW
@given(strategies.ordered_pairs(parse_input_spec({"kind": "array", "dtype": "float64", "shape": ["batch", 2], "allow_nan": True}, "input")))
def test_ordered_pairs_are_ordered(pair):
    low, high = pair
    assert low.shape == high.shape
    assert np.all(low <= high)


@FEW
@given(strategies.ordered_pairs(parse_input_spec({"kind": "scalar", "dtype": "int32", "min": 0, "max": 9}, "input")))
def test_ordered_scalar_pairs(pair):
    assert pair[0] <= pair[1]


def test_ordered_pairs_reject_text():
    with pytest.raises(InvalidArgument, match="text inputs have no order"):
        strategies.ordered_pairs(parse_input_spec({"kind": "text"}, "input"))


@FEW
@given(strategies.inputs_from_table({"kind": "array", "dtype": "uint8", "shape": ["n"], "dims": {"n": {"min": 2, "max": 2}}}))
def test_inputs_from_table(array):
    assert array.dtype == np.uint8
    assert array.shape == (2,)


def test_invalid_arguments_raise_invalid_argument():
    with pytest.raises(InvalidArgument, match="array_inputs: dtype: unknown dtype 'float'"):
        strategies.array_inputs("float", [4])
    with pytest.raises(InvalidArgument, match="scalar_inputs: min: min 2 is greater than max 1"):
        strategies.scalar_inputs("int64", min_value=2, max_value=1)
    with pytest.raises(InvalidArgument, match="text_inputs: max_size"):
        strategies.text_inputs(min_size=3, max_size=1)


def test_declared_inputs_read_pyproject(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        textwrap.dedent(
            """
            [tool.pytest-aiml.preprocessing."churn.features:bucketize"]
            input = { kind = "scalar", dtype = "int64", min = 18, max = 99 }
            properties = ["monotonic"]
            """
        )
    )
    value = find(strategies.declared_inputs("churn.features:bucketize", pyproject), lambda value: value > 50, settings=FIND)
    assert type(value) is int
    assert 50 < value <= 99


def test_declared_inputs_missing_function(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.pytest-aiml.preprocessing."churn.features:bucketize"]\ninput = { kind = "text" }\nproperties = ["deterministic"]\n')
    with pytest.raises(ConfigError) as caught:
        strategies.declared_inputs("churn.features:standardize", pyproject)
    assert caught.value.key == 'preprocessing."churn.features:standardize"'
    assert "'churn.features:bucketize'" in caught.value.problem


@pytest.mark.skipif(HAS_PANDAS, reason="checks the error for a missing pandas")
def test_frame_inputs_need_pandas():
    with pytest.raises(InvalidArgument, match="frame inputs need pandas"):
        strategies.frame_inputs({"age": {"dtype": "float64"}})


@pytest.mark.skipif(not HAS_PANDAS, reason="pandas is not installed; frame inputs need it")
def test_frame_inputs_follow_columns():
    frames = strategies.frame_inputs(
        {"age": {"dtype": "float64", "min": 0, "max": 120, "nullable": True}, "city": {"dtype": "str"}},
        min_rows=2,
        max_rows=4,
    )
    frame = find(frames, lambda frame: frame["age"].isna().any(), settings=FIND)
    assert list(frame.columns) == ["age", "city"]
    assert 2 <= len(frame) <= 4
    assert frame["age"].dtype == np.float64
    assert all(isinstance(city, str) for city in frame["city"])
    assert all(math.isnan(age) or 0 <= age <= 120 for age in frame["age"])
