"""Checks of what a repository declares: preprocessing properties and served models.

The checks run in :mod:`pytest_aiml.properties` and :mod:`pytest_aiml.serving`; these
classes give them codes, priorities and documentation like every other rule.
"""

from __future__ import annotations

from pytest_aiml.engine.rule import Category, DeclaredRule, Effort, Example, Priority

_STANDARDIZE_TABLE = '''
[tool.pytest-aiml.preprocessing."features:standardize"]
input = { kind = "array", dtype = "float64", shape = ["batch", 3], min = -100.0, max = 100.0 }
properties = ["deterministic", "finite", "no_mutation"]
max_examples = 30
'''

_SKEW_TABLE = '''
[tool.pytest-aiml.preprocessing."features:scale"]
input = { kind = "array", dtype = "float64", shape = ["batch", 2], min = -10.0, max = 10.0 }
properties = ["deterministic"]
matches = "serving:scale"
tolerance = { rtol = 1e-9, atol = 1e-12 }
max_examples = 30
'''


class PreprocessingProperty(DeclaredRule):
    code = "AIML801"
    slug = "preprocessing-property"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    anti_pattern = "Inconsistent preprocessing"
    message = "a declared preprocessing function breaks one of its declared properties"
    impact = (
        "Preprocessing that is nondeterministic, yields NaN, depends on the batch or changes its input "
        "corrupts training data and predictions silently."
    )
    fix = (
        "Fix the function for the falsifying example shown (guard zero variance, copy before changing "
        "the input, compute statistics once at fit time), or correct the declared input range."
    )
    VALID = (
        Example(
            files={
                "pyproject.toml": _STANDARDIZE_TABLE,
                "features.py": "import numpy as np\n\n\ndef standardize(batch):\n"
                "    std = batch.std(axis=0)\n    return (batch - batch.mean(axis=0)) / np.where(std == 0, 1.0, std)\n",
            }
        ),
    )
    INVALID = (
        Example(
            files={
                "pyproject.toml": _STANDARDIZE_TABLE,
                "features.py": "def standardize(batch):\n    batch -= batch.mean(axis=0)\n"
                "    return batch / batch.std(axis=0)\n",
            }
        ),
    )


class PreprocessingSkew(DeclaredRule):
    code = "AIML802"
    slug = "preprocessing-skew"
    category = Category.SERVING
    priority = Priority.CRITICAL
    effort = Effort.MEDIUM
    anti_pattern = "Training-serving skew"
    message = "the serving twin of a preprocessing function computes something else than the training one"
    impact = "The model sees differently transformed features in production than in training, and its accuracy drops without an error."
    fix = "Serve with the exact function (or fitted pipeline) used in training instead of a re-implementation, or fix the twin."
    VALID = (
        Example(
            files={
                "pyproject.toml": _SKEW_TABLE,
                "features.py": "def scale(batch):\n    return batch * 0.5 + 1.0\n",
                "serving.py": "def scale(batch):\n    return batch * 0.5 + 1.0\n",
            }
        ),
    )
    INVALID = (
        Example(
            files={
                "pyproject.toml": _SKEW_TABLE,
                "features.py": "def scale(batch):\n    return batch * 0.5 + 1.0\n",
                "serving.py": "import numpy as np\n\n\ndef scale(batch):\n    return np.round(batch * 0.5 + 1.0, 2)\n",
            }
        ),
    )


class ServingParity(DeclaredRule):
    code = "AIML811"
    slug = "onnx-torch-parity"
    category = Category.SERVING
    priority = Priority.CRITICAL
    effort = Effort.MEDIUM
    anti_pattern = "Training-serving skew"
    message = "the ONNX export computes something else than the Torch model it came from"
    impact = (
        "The served ONNX model disagrees with the trained Torch model: a batch size baked in at export, "
        "a data-dependent branch frozen by tracing or a dtype change shows up only in production."
    )
    fix = (
        "Export again with dynamic axes for every variable dimension (torch.onnx.export(dynamo=True, "
        "dynamic_shapes=...)), remove data-dependent Python control flow, keep dtypes; or set a "
        "per-output tolerance when the difference is expected."
    )
    example_tests = "tests/serving/test_parity.py"


class ServingInputValidation(DeclaredRule):
    code = "AIML812"
    slug = "serving-input-probes"
    category = Category.SERVING
    priority = Priority.CRITICAL
    effort = Effort.LOW
    anti_pattern = "No input validation"
    message = "the serving entry point returns a prediction for malformed input"
    impact = "NaN, infinities, empty batches or wrong shapes produce silent garbage predictions instead of a clear 4xx error."
    fix = "Validate dtype, rank, fixed dimensions, batch size and finiteness before the model runs, and reject bad input with an error."
    example_tests = "tests/serving/test_probes.py"


class LatencyBudget(DeclaredRule):
    code = "AIML813"
    slug = "latency-budget"
    category = Category.SERVING
    priority = Priority.HIGH
    effort = Effort.MEDIUM
    message = "a declared model exceeds its latency budget"
    impact = "A model slower than its budget breaks the service's latency objective under real traffic."
    fix = "Profile the model (batching, thread count, quantisation, ONNX Runtime graph optimisations) or revise the budget with the service owners."
    example_tests = "tests/serving/test_latency.py"


RULES = (PreprocessingProperty, PreprocessingSkew, ServingParity, ServingInputValidation, LatencyBudget)
