"""Preprocessing functions for the property tests: sound ones and one bug per property.

The scalers are fitted once, at import, on fixed synthetic training data, the way
a feature module loads its fitted statistics. Each buggy function carries a bug
that real pipelines ship; its docstring names the property it breaks.
"""

from __future__ import annotations

import html

import numpy as np
from scipy.special import expit
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

_TRAINING_FEATURES = np.random.default_rng(0).normal(
    loc=[10.0, -5.0, 0.0, 100.0], scale=[2.0, 3.0, 0.5, 20.0], size=(200, 4)
)
_STANDARD_SCALER = StandardScaler().fit(_TRAINING_FEATURES)
_UNIT_RANGE_SCALER = MinMaxScaler(clip=True).fit(_TRAINING_FEATURES)
_UNCLIPPED_UNIT_RANGE_SCALER = MinMaxScaler().fit(_TRAINING_FEATURES)
CLIP_LOW, CLIP_HIGH = np.percentile(_TRAINING_FEATURES, [1, 99], axis=0)

TRAINING_MEAN = _STANDARD_SCALER.mean_.copy()
TRAINING_SCALE = _STANDARD_SCALER.scale_.copy()


# --- sound functions --------------------------------------------------------


def standardize(features: np.ndarray) -> np.ndarray:
    """Standardize with the scaler fitted on the training data."""
    return _STANDARD_SCALER.transform(features)


def serving_standardize(features: np.ndarray) -> np.ndarray:
    """Serving-side standardization: the same statistics, in plain NumPy."""
    return (np.asarray(features, dtype=np.float64) - TRAINING_MEAN) / TRAINING_SCALE


def unstandardize(scores: np.ndarray) -> np.ndarray:
    """Map standardized scores back to feature units."""
    return _STANDARD_SCALER.inverse_transform(scores)


def scale_unit_range(features: np.ndarray) -> np.ndarray:
    """Scale each feature to [0, 1] with the training range, clipping values outside it."""
    return _UNIT_RANGE_SCALER.transform(features)


def clip_outliers(features: np.ndarray) -> np.ndarray:
    """Clip each feature to its 1st and 99th training percentiles."""
    return np.clip(features, CLIP_LOW, CLIP_HIGH)


def add_squared_features(features: np.ndarray) -> np.ndarray:
    """Append the square of every feature, doubling the feature count."""
    return np.hstack([features, features**2])


def normalize_whitespace(text: str) -> str:
    """Lower-case text and collapse runs of whitespace to one space."""
    return " ".join(text.lower().split())


def sigmoid(logit: float) -> float:
    """Map a logit to a probability."""
    return float(expit(logit))


def standardize_frame(frame):  # pandas is optional, so no annotation
    """Standardize the numeric columns of a pandas frame with the training statistics."""
    result = frame.copy()
    result["income"] = (frame["income"] - 50_000.0) / 15_000.0
    return result


# --- one bug per property ---------------------------------------------------

_running_mean = np.zeros(4)


def standardize_with_running_mean(features: np.ndarray) -> np.ndarray:
    """Breaks ``deterministic``: updates its centring statistics on every call."""
    global _running_mean
    _running_mean = 0.9 * _running_mean + 0.1 * features.mean(axis=0)
    return features - _running_mean


def standardize_by_batch_std(features: np.ndarray) -> np.ndarray:
    """Breaks ``finite``: divides by the batch standard deviation, zero on a constant column."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (features - features.mean(axis=0)) / features.std(axis=0)


def one_hot_fitted_per_batch(categories: np.ndarray) -> np.ndarray:
    """Breaks ``shape``: fits the encoder on each batch, so the width is the number of categories seen."""
    return OneHotEncoder(sparse_output=False).fit_transform(categories)


def standardize_to_float32(features: np.ndarray) -> np.ndarray:
    """Breaks ``dtype``: casts to float32 to save memory, against the float64 contract."""
    return ((features - TRAINING_MEAN) / TRAINING_SCALE).astype(np.float32)


def min_max_per_batch(features: np.ndarray) -> np.ndarray:
    """Breaks ``batch_invariant``: scales with the batch's own minimum and maximum."""
    low = features.min(axis=0)
    spread = features.max(axis=0) - low
    spread[spread == 0] = 1.0
    return (features - low) / spread


def standardize_in_place(features: np.ndarray) -> np.ndarray:
    """Breaks ``no_mutation``: standardizes the caller's array in place."""
    features -= TRAINING_MEAN
    features /= TRAINING_SCALE
    return features


def escape_markup(text: str) -> str:
    """Breaks ``idempotent``: escapes HTML, so a second pass escapes the ampersands again."""
    return html.escape(" ".join(text.split()))


def log_magnitude(values: np.ndarray) -> np.ndarray:
    """Breaks ``monotonic``: log of the absolute value, which decreases for negative inputs."""
    return np.log1p(np.abs(values))


def scale_unit_range_unclipped(features: np.ndarray) -> np.ndarray:
    """Breaks ``bounded``: a min-max scaler without clipping leaves [0, 1] outside the training range."""
    return _UNCLIPPED_UNIT_RANGE_SCALER.transform(features)


def serving_standardize_rounded(features: np.ndarray) -> np.ndarray:
    """Breaks ``matches``: the serving config stores the statistics rounded to two decimals."""
    return (np.asarray(features, dtype=np.float64) - TRAINING_MEAN.round(2)) / TRAINING_SCALE.round(2)


def standardize_frame_in_place(frame):
    """Breaks ``no_mutation`` for frames: overwrites the caller's column."""
    frame["income"] = (frame["income"] - 50_000.0) / 15_000.0
    return frame


def unstandardize_with_variance(scores: np.ndarray) -> np.ndarray:
    """Breaks ``inverse``: multiplies by the variance where the scale (standard deviation) belongs."""
    return scores * _STANDARD_SCALER.var_ + _STANDARD_SCALER.mean_
