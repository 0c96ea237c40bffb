"""Property checks on real preprocessing functions: sound ones pass, each bug fails its property."""

from __future__ import annotations

import importlib.util
import json
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from pytest_aiml.properties.checks import (
    PropertyResult,
    PropertySettings,
    PropertyUnavailable,
    database_directory,
    derandomize_default,
    run_property,
    unavailable_reason,
)
from pytest_aiml.properties.resolve import resolve_spec_functions
from pytest_aiml.properties.spec import PreprocessingSpec, parse_preprocessing_specs

# The repository root, from which the plugin imports declared functions.
REPOSITORY_ROOT = Path(__file__).parents[2]
HAS_PANDAS = importlib.util.find_spec("pandas") is not None

# Derandomized, so every run of this suite tries the same inputs.
SETTINGS = PropertySettings(max_examples=30, deadline_ms=None, derandomize=True)

STANDARD_INPUT = 'input = { kind = "array", dtype = "float64", shape = ["batch", 4], min = -1e6, max = 1e6 }'

SOUND_SPECS = {
    "standardize": f"""
        [preprocessing."tests.properties.sample_preprocessing:standardize"]
        {STANDARD_INPUT}
        properties = ["deterministic", "finite", "shape", "dtype", "batch_invariant", "no_mutation"]
        output = {{ shape = "same", dtype = "float64" }}
        matches = "tests.properties.sample_preprocessing:serving_standardize"
        inverse = "tests.properties.sample_preprocessing:unstandardize"
        tolerance = {{ rtol = 1e-7, atol = 1e-9 }}
    """,
    "clip_outliers": """
        [preprocessing."tests.properties.sample_preprocessing:clip_outliers"]
        input = { kind = "array", dtype = "float64", shape = ["batch", 4], dims = { batch = { min = 1, max = 5 } }, min = -1e3, max = 1e3 }
        properties = ["deterministic", "finite", "shape", "dtype", "batch_invariant", "no_mutation", "idempotent", "monotonic", "bounded"]
        output = { shape = "same", dtype = "same", min = -100, max = 200 }
    """,
    "scale_unit_range": """
        [preprocessing."tests.properties.sample_preprocessing:scale_unit_range"]
        input = { kind = "array", dtype = "float64", shape = ["batch", 4], min = -1e3, max = 1e3 }
        properties = ["deterministic", "finite", "batch_invariant", "no_mutation", "monotonic", "bounded"]
        output = { min = 0.0, max = 1.0 }
    """,
    "add_squared_features": """
        [preprocessing."tests.properties.sample_preprocessing:add_squared_features"]
        input = { kind = "array", dtype = "float64", shape = ["batch", "features"], dims = { features = { min = 1, max = 3 } }, min = -1e3, max = 1e3 }
        properties = ["deterministic", "finite", "shape", "dtype", "batch_invariant", "no_mutation"]
        output = { shape = ["batch", "features * 2"], dtype = "float64" }
    """,
    "normalize_whitespace": """
        [preprocessing."tests.properties.sample_preprocessing:normalize_whitespace"]
        input = { kind = "text", max_size = 30 }
        properties = ["deterministic", "idempotent"]
    """,
    "sigmoid": """
        [preprocessing."tests.properties.sample_preprocessing:sigmoid"]
        input = { kind = "scalar", dtype = "float64", min = -50, max = 50 }
        properties = ["deterministic", "finite", "dtype", "monotonic", "bounded"]
        output = { dtype = "float64", min = 0.0, max = 1.0 }
    """,
}

# Each buggy function declares its broken property plus others it keeps, so the
# test shows that exactly the broken one fails.
BUGGY_SPECS = {
    "deterministic": f"""
        [preprocessing."tests.properties.sample_preprocessing:standardize_with_running_mean"]
        {STANDARD_INPUT}
        properties = ["deterministic", "shape", "dtype", "no_mutation"]
        output = {{ shape = "same", dtype = "same" }}
    """,
    "finite": f"""
        [preprocessing."tests.properties.sample_preprocessing:standardize_by_batch_std"]
        {STANDARD_INPUT}
        properties = ["finite", "deterministic", "shape", "dtype", "no_mutation"]
        output = {{ shape = "same", dtype = "float64" }}
    """,
    "shape": """
        [preprocessing."tests.properties.sample_preprocessing:one_hot_fitted_per_batch"]
        input = { kind = "array", dtype = "int64", shape = ["batch", 1], min = 0, max = 2 }
        properties = ["shape", "deterministic", "finite", "no_mutation"]
        output = { shape = ["batch", 3] }
    """,
    "dtype": f"""
        [preprocessing."tests.properties.sample_preprocessing:standardize_to_float32"]
        {STANDARD_INPUT}
        properties = ["dtype", "deterministic", "finite", "shape", "batch_invariant", "no_mutation"]
        output = {{ shape = "same", dtype = "same" }}
    """,
    "batch_invariant": """
        [preprocessing."tests.properties.sample_preprocessing:min_max_per_batch"]
        input = { kind = "array", dtype = "float64", shape = ["batch", 2], min = -1e3, max = 1e3 }
        properties = ["batch_invariant", "deterministic", "finite", "shape", "no_mutation", "bounded"]
        output = { shape = "same", min = 0.0, max = 1.0 }
    """,
    "no_mutation": f"""
        [preprocessing."tests.properties.sample_preprocessing:standardize_in_place"]
        {STANDARD_INPUT}
        properties = ["no_mutation", "deterministic", "finite", "shape", "dtype", "batch_invariant"]
        output = {{ shape = "same", dtype = "float64" }}
        matches = "tests.properties.sample_preprocessing:serving_standardize"
    """,
    "idempotent": """
        [preprocessing."tests.properties.sample_preprocessing:escape_markup"]
        input = { kind = "text", max_size = 30 }
        properties = ["idempotent", "deterministic"]
    """,
    "monotonic": """
        [preprocessing."tests.properties.sample_preprocessing:log_magnitude"]
        input = { kind = "array", dtype = "float64", shape = ["batch", 3], min = -100, max = 100 }
        properties = ["monotonic", "deterministic", "finite", "shape", "no_mutation", "batch_invariant"]
        output = { shape = "same" }
    """,
    "bounded": """
        [preprocessing."tests.properties.sample_preprocessing:scale_unit_range_unclipped"]
        input = { kind = "array", dtype = "float64", shape = ["batch", 4], min = -1e3, max = 1e3 }
        properties = ["bounded", "deterministic", "finite", "batch_invariant", "no_mutation", "monotonic"]
        output = { min = 0.0, max = 1.0 }
    """,
    "matches": f"""
        [preprocessing."tests.properties.sample_preprocessing:standardize"]
        {STANDARD_INPUT}
        properties = ["deterministic", "finite", "batch_invariant"]
        matches = "tests.properties.sample_preprocessing:serving_standardize_rounded"
    """,
    "inverse": f"""
        [preprocessing."tests.properties.sample_preprocessing:standardize"]
        {STANDARD_INPUT}
        properties = ["deterministic", "no_mutation"]
        inverse = "tests.properties.sample_preprocessing:unstandardize_with_variance"
    """,
}

FRAME_SPEC = """
    [preprocessing."tests.properties.sample_preprocessing:standardize_frame"]
    input = { kind = "frame", columns = { income = { dtype = "float64", min = 0, max = 1e6 }, city = { dtype = "str" } }, rows = { min = 1, max = 5 } }
    properties = ["deterministic", "finite", "shape", "dtype", "batch_invariant", "no_mutation"]
    output = { shape = "same", dtype = "same" }
"""


def load_spec(toml_text: str) -> PreprocessingSpec:
    document = tomllib.loads("\n".join(line.strip() for line in toml_text.splitlines()))
    (spec,) = parse_preprocessing_specs(document["preprocessing"])
    return spec


def run_all(spec: PreprocessingSpec, settings: PropertySettings = SETTINGS) -> dict[str, PropertyResult]:
    functions = resolve_spec_functions(spec, REPOSITORY_ROOT)
    return {
        name: run_property(
            spec, name, functions.function, twin=functions.twin, inverse=functions.inverse, settings=settings
        )
        for name in spec.properties
    }


def run_one(toml_text: str, property_name: str, settings: PropertySettings = SETTINGS) -> PropertyResult:
    spec = load_spec(toml_text)
    functions = resolve_spec_functions(spec, REPOSITORY_ROOT)
    return run_property(
        spec, property_name, functions.function, twin=functions.twin, inverse=functions.inverse, settings=settings
    )


@pytest.mark.parametrize("toml_text", SOUND_SPECS.values(), ids=SOUND_SPECS.keys())
def test_sound_function_passes_every_property(toml_text):
    results = run_all(load_spec(toml_text))
    failures = {name: result.describe() for name, result in results.items() if not result.passed}
    assert failures == {}
    assert all(result.examples_run > 0 for result in results.values())


@pytest.mark.parametrize(("broken", "toml_text"), BUGGY_SPECS.items(), ids=BUGGY_SPECS.keys())
def test_buggy_function_fails_only_its_property(broken, toml_text):
    results = run_all(load_spec(toml_text))
    failed = [name for name, result in results.items() if not result.passed]
    assert failed == [broken], {name: results[name].describe() for name in failed}

    result = results[broken]
    assert result.property_name == broken
    assert result.failure_kind == "violated"
    assert result.falsifying_example
    assert result.explanation.endswith(".")


def test_zero_std_shrinks_to_constant_row():
    result = run_one(BUGGY_SPECS["finite"], "finite")
    assert result.falsifying_example == "array([[0., 0., 0., 0.]])  # shape (1, 4), dtype float64"
    assert "the output is not" in result.explanation
    assert "nan" in result.explanation


def test_batch_dependent_scaling_names_row():
    result = run_one(BUGGY_SPECS["batch_invariant"], "batch_invariant")
    assert "transformed alone differs from the same row transformed in a batch of 2" in result.explanation
    assert "shape (2, 2)" in result.falsifying_example


def test_in_place_change_shows_original_input():
    result = run_one(BUGGY_SPECS["no_mutation"], "no_mutation")
    assert "modified its input in place" in result.explanation
    # The example is copied before the call, so it shows the input as generated.
    assert result.falsifying_example.startswith("array([[0., 0., 0., 0.]])")


def test_rounded_serving_twin_reports_difference():
    result = run_one(BUGGY_SPECS["matches"], "matches")
    assert "serving_standardize_rounded differs from tests.properties.sample_preprocessing:standardize" in result.explanation
    assert "max absolute difference" in result.explanation
    assert "rtol=1e-07, atol=1e-09" in result.explanation


def test_html_escaping_fails_idempotence_on_markup():
    result = run_one(BUGGY_SPECS["idempotent"], "idempotent")
    assert "applied twice" in result.explanation
    assert any(character in result.falsifying_example for character in "&<>\"'")


def test_one_hot_width_reports_shapes():
    result = run_one(BUGGY_SPECS["shape"], "shape")
    assert result.explanation == "The output shape is (1, 1), but the declared shape ['batch', 3] with batch=1 is (1, 3)."


def test_float32_cast_reports_dtypes():
    result = run_one(BUGGY_SPECS["dtype"], "dtype")
    assert result.explanation == "The output dtype is float32, but the input's dtype is float64."


def test_monotonic_failure_shows_pair():
    result = run_one(BUGGY_SPECS["monotonic"], "monotonic")
    assert result.falsifying_example.startswith("low = array(")
    assert "\nhigh = array(" in result.falsifying_example
    assert "is not increasing" in result.explanation


def test_function_that_raises_is_reported_with_location():
    spec = load_spec(
        """
        [preprocessing."tests:reciprocal"]
        input = { kind = "scalar", min = -10, max = 10 }
        properties = ["deterministic"]
        """
    )

    def reciprocal(value: float) -> float:
        return 1 / value

    result = run_property(spec, "deterministic", reciprocal, settings=SETTINGS)
    assert result.failure_kind == "raised"
    assert result.explanation.startswith("tests:reciprocal raised ZeroDivisionError: float division by zero (at ")
    assert "test_property_checks.py" in result.explanation
    assert result.falsifying_example == "0.0"


def test_slow_function_fails_deadline():
    spec = load_spec(
        """
        [preprocessing."tests:slow"]
        input = { kind = "scalar" }
        properties = ["finite"]
        """
    )

    def slow(value: float) -> float:
        time.sleep(0.03)
        return value

    settings = PropertySettings(max_examples=3, deadline_ms=5, derandomize=True)
    result = run_property(spec, "finite", slow, settings=settings)
    assert result.failure_kind == "deadline"
    assert "over the deadline of 5 ms" in result.explanation


def test_failure_that_does_not_repeat_is_flaky():
    spec = load_spec(
        """
        [preprocessing."tests:fails_once"]
        input = { kind = "scalar" }
        properties = ["finite"]
        """
    )
    calls = []

    def fails_once(value: float) -> float:
        calls.append(value)
        return float("nan") if len(calls) == 1 else value

    result = run_property(spec, "finite", fails_once, settings=SETTINGS)
    assert result.failure_kind == "flaky"
    assert "The first failure was: The input is finite but the output is not" in result.explanation


@pytest.mark.parametrize("property_name", ["batch_invariant", "deterministic"])
def test_derandomized_runs_repeat_exactly(property_name):
    first = run_one(BUGGY_SPECS["batch_invariant"], property_name)
    second = run_one(BUGGY_SPECS["batch_invariant"], property_name)
    assert first.to_dict() == second.to_dict()


def test_database_replays_saved_failure(tmp_path):
    settings = PropertySettings(max_examples=40, deadline_ms=None, derandomize=False, database_dir=tmp_path)
    spec = load_spec(BUGGY_SPECS["finite"])

    first = run_one(BUGGY_SPECS["finite"], "finite", settings)
    folder = database_directory(settings, spec, "finite")
    second = run_one(BUGGY_SPECS["finite"], "finite", settings)

    assert folder is not None and folder.parent == tmp_path
    assert any(path.is_file() for path in folder.rglob("*"))
    assert second.falsifying_example == first.falsifying_example
    # The saved example is replayed first, so the rerun needs at most as many examples.
    assert second.examples_run <= first.examples_run


def test_database_folder_per_property(tmp_path):
    spec = load_spec(SOUND_SPECS["standardize"])
    settings = PropertySettings(database_dir=tmp_path)
    folders = {database_directory(settings, spec, name) for name in spec.properties}

    assert len(folders) == len(spec.properties)
    assert database_directory(PropertySettings(database_dir=tmp_path, derandomize=True), spec, "finite") is None
    assert database_directory(PropertySettings(), spec, "finite") is None


def test_result_dict_is_json_and_round_trips():
    result = run_one(BUGGY_SPECS["finite"], "finite")
    data = result.to_dict()

    assert json.loads(json.dumps(data)) == data
    assert set(data) == {
        "function",
        "property",
        "passed",
        "explanation",
        "falsifying_example",
        "failure_kind",
        "examples_run",
    }
    assert data["function"] == "tests.properties.sample_preprocessing:standardize_by_batch_std"
    assert data["property"] == "finite"
    assert data["passed"] is False
    assert PropertyResult.from_dict(data) == result


def test_describe_names_property_and_example():
    result = run_one(BUGGY_SPECS["finite"], "finite")
    lines = result.describe().splitlines()
    assert lines[0] == "tests.properties.sample_preprocessing:standardize_by_batch_std: property 'finite' failed (violated)"
    assert lines[2] == "Falsifying example (shrunk):"


def test_undeclared_property_rejected():
    spec = load_spec(BUGGY_SPECS["inverse"])
    with pytest.raises(ValueError, match="does not declare property 'finite'"):
        run_property(spec, "finite", np.asarray, settings=SETTINGS)


def test_missing_inverse_callable_rejected():
    spec = load_spec(BUGGY_SPECS["inverse"])
    with pytest.raises(ValueError, match="needs the inverse= callable"):
        run_property(spec, "inverse", np.asarray, settings=SETTINGS)


def test_settings_for_spec_prefers_spec_values():
    spec = load_spec(
        """
        [preprocessing."tests:f"]
        input = { kind = "scalar" }
        properties = ["finite"]
        max_examples = 7
        deadline = false
        """
    )
    settings = PropertySettings.for_spec(spec, environ={"CI": "true"}, database_dir=Path("cache"))
    assert settings == PropertySettings(max_examples=7, deadline_ms=None, derandomize=True, database_dir=Path("cache"))


def test_settings_for_spec_uses_defaults():
    spec = load_spec(SOUND_SPECS["sigmoid"])
    settings = PropertySettings.for_spec(spec, environ={}, database_dir=None, max_examples=12, deadline_ms=300)
    assert settings == PropertySettings(max_examples=12, deadline_ms=300, derandomize=False, database_dir=None)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"CI": "1"}, True),
        ({"CI": "woodpecker"}, True),
        ({"CI": ""}, False),
        ({"CI": "false"}, False),
        ({"CI": " 0 "}, False),
        ({"GITHUB_ACTIONS": "true"}, False),
    ],
)
def test_derandomize_default_reads_ci(environ, expected):
    assert derandomize_default(environ) is expected


@pytest.mark.skipif(HAS_PANDAS, reason="checks the report for a missing pandas")
def test_frame_spec_unavailable_without_pandas():
    spec = load_spec(FRAME_SPEC)
    assert unavailable_reason(spec) == "frame inputs need pandas, which is not installed"
    with pytest.raises(PropertyUnavailable):
        run_property(spec, "deterministic", lambda frame: frame, settings=SETTINGS)


@pytest.mark.skipif(not HAS_PANDAS, reason="pandas is not installed; frame inputs need it")
def test_sound_frame_function_passes_every_property():
    results = run_all(load_spec(FRAME_SPEC))
    failures = {name: result.describe() for name, result in results.items() if not result.passed}
    assert failures == {}


@pytest.mark.skipif(not HAS_PANDAS, reason="pandas is not installed; frame inputs need it")
def test_frame_modified_in_place_fails_no_mutation():
    spec = load_spec(FRAME_SPEC.replace(":standardize_frame", ":standardize_frame_in_place"))
    results = run_all(spec)
    failed = [name for name, result in results.items() if not result.passed]
    assert failed == ["no_mutation"]
    assert "in column 'income'" in results["no_mutation"].explanation
    assert results["no_mutation"].falsifying_example.startswith("DataFrame of shape (1, 2)")
