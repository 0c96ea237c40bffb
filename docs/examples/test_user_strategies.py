"""Property tests written by hand over pytest-aiml's input strategies.

The preprocessing functions are defined here so that the file runs on its own:
``python -m pytest docs/examples/test_user_strategies.py``.
"""

import numpy as np
from hypothesis import given, settings

from pytest_aiml import strategies

TRAINING_MEAN = np.array([0.5, -1.0, 3.0, 0.0])
TRAINING_SCALE = np.array([2.0, 0.5, 1.5, 1.0])


def standardize(features: np.ndarray) -> np.ndarray:
    """Scale each of the four columns with statistics fixed at training time."""
    return (features - TRAINING_MEAN) / TRAINING_SCALE


def normalize_text(text: str) -> str:
    """Lower-case a string and collapse its runs of whitespace to single spaces."""
    return " ".join(text.lower().split())


@given(
    strategies.array_inputs(
        "float64", ["batch", 4], dims={"batch": (1, 32)}, min_value=-1e6, max_value=1e6
    )
)
def test_standardize_keeps_shape_and_dtype(features):
    scaled = standardize(features)
    assert scaled.shape == features.shape
    assert scaled.dtype == features.dtype


@given(strategies.array_inputs("float64", ["batch", 4], min_value=-1e6, max_value=1e6))
def test_standardize_is_batch_invariant(features):
    batch = standardize(features)
    for row in range(len(features)):
        np.testing.assert_allclose(batch[row : row + 1], standardize(features[row : row + 1]))


@given(strategies.inputs_from_table({"kind": "array", "dtype": "float32", "shape": [8], "min": -3, "max": 3}))
def test_table_inputs_respect_bounds(values):
    assert values.dtype == np.float32
    assert values.shape == (8,)
    assert np.all((values >= -3) & (values <= 3))


@given(strategies.scalar_inputs("float64", min_value=0.0, max_value=1.0))
def test_scalar_inputs_respect_their_bounds(value):
    assert 0.0 <= value <= 1.0


@settings(max_examples=50)
@given(strategies.text_inputs(max_size=40, codec="ascii"))
def test_normalize_text_is_idempotent(text):
    once = normalize_text(text)
    assert normalize_text(once) == once
