"""Parsing and validation of ``[tool.pytest-aiml.preprocessing]`` tables."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.properties.spec import (
    ArrayInput,
    ColumnSpec,
    DimensionBounds,
    FrameInput,
    OutputSpec,
    ScalarInput,
    TextInput,
    Tolerance,
    parse_preprocessing_specs,
    spec_key,
    without_special_values,
)

ISSUE_EXAMPLE = """
[tool.pytest-aiml.preprocessing."churn.features:standardize"]
input = { kind = "array", dtype = "float64", shape = ["batch", 4], min = -1e6, max = 1e6, allow_nan = false }
properties = ["deterministic", "finite", "batch_invariant", "no_mutation"]
output = { shape = "same", dtype = "float64" }
matches = "churn.serving:standardize"   # optional serving twin, compared within tolerance
tolerance = { rtol = 1e-7, atol = 1e-9 }
max_examples = 200
"""

KEY = 'preprocessing."churn.features:standardize"'
ARRAY_INPUT = {"kind": "array", "dtype": "float64", "shape": ["batch", 4]}


def parse_one(table: dict) -> object:
    (spec,) = parse_preprocessing_specs({"churn.features:standardize": table})
    return spec


def config_error(table: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_one(table)
    return caught.value


def test_issue_example_parses():
    document = tomllib.loads(ISSUE_EXAMPLE)
    (spec,) = parse_preprocessing_specs(document["tool"]["pytest-aiml"]["preprocessing"])

    assert spec.function == "churn.features:standardize"
    assert spec.key == KEY
    assert spec.input == ArrayInput(
        dtype="float64",
        shape=("batch", 4),
        dims=(DimensionBounds("batch", 1, 10),),
        min_value=-1e6,
        max_value=1e6,
    )
    assert spec.properties == ("deterministic", "finite", "batch_invariant", "no_mutation", "matches")
    assert spec.output == OutputSpec(shape="same", dtype="float64")
    assert spec.matches == "churn.serving:standardize"
    assert spec.tolerance == Tolerance(rtol=1e-7, atol=1e-9)
    assert spec.max_examples == 200
    assert spec.deadline_ms is None


def test_specs_keep_table_order():
    table = {
        "b.module:second": {"input": {"kind": "text"}, "properties": ["deterministic"]},
        "a.module:first": {"input": {"kind": "text"}, "properties": ["deterministic"]},
    }
    assert [spec.function for spec in parse_preprocessing_specs(table)] == ["b.module:second", "a.module:first"]


def test_every_input_kind_parses():
    frame = parse_one(
        {
            "input": {
                "kind": "frame",
                "columns": {"age": {"dtype": "float64", "min": 0, "max": 120, "nullable": True}, "city": {"dtype": "str"}},
                "rows": {"min": 2, "max": 5},
            },
            "properties": ["batch_invariant"],
        }
    )
    scalar = parse_one({"input": {"kind": "scalar", "dtype": "int32", "min": 0, "max": 9}, "properties": ["monotonic"]})
    text = parse_one({"input": {"kind": "text", "max_size": 40, "codec": "ascii"}, "properties": ["idempotent"]})

    assert frame.input == FrameInput(
        columns=(
            ColumnSpec("age", "float64", min_value=0, max_value=120, nullable=True),
            ColumnSpec("city", "str"),
        ),
        min_rows=2,
        max_rows=5,
    )
    assert scalar.input == ScalarInput(dtype="int32", min_value=0, max_value=9)
    assert text.input == TextInput(max_size=40, codec="ascii")


def test_named_dimensions_and_output_expressions():
    spec = parse_one(
        {
            "input": {
                "kind": "array",
                "dtype": "float32",
                "shape": ["batch", "features", "batch"],
                "dims": {"features": {"min": 2, "max": 3}},
            },
            "properties": ["shape"],
            "output": {"shape": ["batch", "features * 2 + 1"]},
        }
    )
    assert spec.input.dims == (DimensionBounds("batch", 1, 10), DimensionBounds("features", 2, 3))
    assert spec.output.shape == ("batch", "features * 2 + 1")


def test_bounded_monotonic_and_deadline_keys():
    spec = parse_one(
        {
            "input": ARRAY_INPUT,
            "properties": ["bounded", "monotonic"],
            "output": {"min": 0, "max": 1},
            "monotonic": "decreasing",
            "deadline": False,
        }
    )
    assert spec.output.min_value == 0
    assert spec.output.max_value == 1
    assert spec.monotonic == "decreasing"
    assert spec.deadline_ms is False


def test_inverse_key_enables_property():
    spec = parse_one({"input": ARRAY_INPUT, "inverse": "churn.features:unstandardize", "deadline": 250})
    assert spec.properties == ("inverse",)
    assert spec.deadline_ms == 250.0


def test_without_special_values_drops_nan_and_infinity():
    spec = parse_one({"input": {**ARRAY_INPUT, "allow_nan": True, "allow_infinity": True}, "properties": ["finite"]})
    finite = without_special_values(spec.input)
    assert finite.allow_nan is False
    assert finite.allow_infinity is False
    assert finite.shape == spec.input.shape


# Each case: the table, the dotted key the error must name, and a fragment of the problem.
INVALID_SPECS = [
    ({"input": ARRAY_INPUT, "properties": ["finite"], "max_exampels": 5}, f"{KEY}.max_exampels", "did you mean 'max_examples'"),
    ({"properties": ["finite"]}, f"{KEY}.input", "missing"),
    ({"input": {"dtype": "float64", "shape": [4]}, "properties": ["finite"]}, f"{KEY}.input.kind", "missing"),
    ({"input": {**ARRAY_INPUT, "kind": "tensor"}, "properties": ["finite"]}, f"{KEY}.input.kind", "unknown value 'tensor'"),
    ({"input": {**ARRAY_INPUT, "dtype": "float"}, "properties": ["finite"]}, f"{KEY}.input.dtype", "unknown dtype 'float'"),
    ({"input": {**ARRAY_INPUT, "dtype": "complex64"}, "properties": ["finite"]}, f"{KEY}.input.dtype", "unknown dtype"),
    ({"input": {**ARRAY_INPUT, "min": 5, "max": 1}, "properties": ["finite"]}, f"{KEY}.input.min", "greater than max"),
    ({"input": {**ARRAY_INPUT, "min": float("nan")}, "properties": ["finite"]}, f"{KEY}.input.min", "finite number"),
    ({"input": {**ARRAY_INPUT, "dtype": "int8", "max": 300}, "properties": ["finite"]}, f"{KEY}.input.max", "outside the range of int8"),
    ({"input": {**ARRAY_INPUT, "dtype": "int64", "min": 0.5}, "properties": ["finite"]}, f"{KEY}.input.min", "not a whole number"),
    ({"input": {**ARRAY_INPUT, "dtype": "float16", "max": 1e6}, "properties": ["finite"]}, f"{KEY}.input.max", "float16"),
    ({"input": {**ARRAY_INPUT, "dtype": "int64", "allow_nan": True}, "properties": ["finite"]}, f"{KEY}.input.allow_nan", "no NaN"),
    ({"input": {**ARRAY_INPUT, "allow_nan": "yes"}, "properties": ["finite"]}, f"{KEY}.input.allow_nan", "true or false"),
    ({"input": {**ARRAY_INPUT, "shape": ["batch", -1]}, "properties": ["finite"]}, f"{KEY}.input.shape[1]", "neither a size"),
    ({"input": {**ARRAY_INPUT, "shape": ["batch", "4x"]}, "properties": ["finite"]}, f"{KEY}.input.shape[1]", "neither a size"),
    ({"input": {**ARRAY_INPUT, "shape": "batch"}, "properties": ["finite"]}, f"{KEY}.input.shape", "expected an array"),
    ({"input": {**ARRAY_INPUT, "shape": None}, "properties": ["finite"]}, f"{KEY}.input.shape", "missing"),
    ({"input": {**ARRAY_INPUT, "dims": {"rows": {"max": 3}}}, "properties": ["finite"]}, f"{KEY}.input.dims.rows", "does not appear in shape"),
    ({"input": {**ARRAY_INPUT, "dims": {"batch": {"min": 4, "max": 2}}}, "properties": ["finite"]}, f"{KEY}.input.dims.batch.min", "greater than max"),
    ({"input": {**ARRAY_INPUT, "dims": {"batch": {"size": 2}}}, "properties": ["finite"]}, f"{KEY}.input.dims.batch.size", "unknown key"),
    ({"input": {**ARRAY_INPUT, "dims": {"batch": {"max": True}}}, "properties": ["finite"]}, f"{KEY}.input.dims.batch.max", "integer"),
    ({"input": {"kind": "frame"}, "properties": ["finite"]}, f"{KEY}.input.columns", "missing or empty"),
    ({"input": {"kind": "frame", "columns": {"n": {"dtype": "int64", "nullable": True}}}, "properties": ["finite"]}, f"{KEY}.input.columns.n.nullable", "cannot hold missing values"),
    ({"input": {"kind": "frame", "columns": {"city name": {"dtype": "str", "max": 3}}}, "properties": ["finite"]}, f'{KEY}.input.columns."city name".max', "no value range"),
    ({"input": {"kind": "text", "min_size": 5, "max_size": 2}, "properties": ["finite"]}, f"{KEY}.input.max_size", "smaller than min_size"),
    ({"input": {"kind": "text", "alphabet": "ab", "codec": "ascii"}, "properties": ["finite"]}, f"{KEY}.input.codec", "both set"),
    ({"input": {"kind": "text", "codec": "utf-16"}, "properties": ["finite"]}, f"{KEY}.input.codec", "unknown value"),
    ({"input": ARRAY_INPUT, "properties": ["finit"]}, f"{KEY}.properties[0]", "did you mean 'finite'"),
    ({"input": ARRAY_INPUT, "properties": ["finite", "finite"]}, f"{KEY}.properties[1]", "listed twice"),
    ({"input": ARRAY_INPUT, "properties": "finite"}, f"{KEY}.properties", "expected an array"),
    ({"input": ARRAY_INPUT, "properties": []}, f"{KEY}.properties", "no properties"),
    ({"input": ARRAY_INPUT, "properties": ["matches"]}, f"{KEY}.matches", "is not set"),
    ({"input": ARRAY_INPUT, "properties": ["finite"], "matches": "churn.serving.standardize"}, f"{KEY}.matches", "not a 'module:function' reference"),
    ({"input": ARRAY_INPUT, "properties": ["shape"]}, f"{KEY}.output.shape", "needs the expected output shape"),
    ({"input": ARRAY_INPUT, "properties": ["dtype"]}, f"{KEY}.output.dtype", "needs the expected output dtype"),
    ({"input": ARRAY_INPUT, "properties": ["dtype"], "output": {"dtype": "double"}}, f"{KEY}.output.dtype", "unknown dtype"),
    ({"input": ARRAY_INPUT, "properties": ["shape"], "output": {"shape": ["batch", "width"]}}, f"{KEY}.output.shape[1]", "unknown dimension 'width'"),
    ({"input": ARRAY_INPUT, "properties": ["shape"], "output": {"shape": ["batch ** 2"]}}, f"{KEY}.output.shape[0]", "only integers"),
    ({"input": ARRAY_INPUT, "properties": ["shape"], "output": {"shape": ["__import__('os')"]}}, f"{KEY}.output.shape[0]", "only integers"),
    ({"input": {"kind": "scalar"}, "properties": ["shape"], "output": {"shape": "same"}}, f"{KEY}.output.shape", "no shape to keep"),
    ({"input": {"kind": "text"}, "properties": ["dtype"], "output": {"dtype": "same"}}, f"{KEY}.output.dtype", "no dtype to keep"),
    ({"input": ARRAY_INPUT, "properties": ["bounded"]}, f"{KEY}.output.min", "needs an output range"),
    ({"input": ARRAY_INPUT, "properties": ["finite"], "output": {"max": 1}}, f"{KEY}.output.min", '"bounded" is not in properties'),
    ({"input": ARRAY_INPUT, "properties": ["bounded"], "output": {"min": 2, "max": 1}}, f"{KEY}.output.min", "greater than max"),
    ({"input": ARRAY_INPUT, "properties": ["finite"], "monotonic": "decreasing"}, f"{KEY}.monotonic", '"monotonic" is not in properties'),
    ({"input": ARRAY_INPUT, "properties": ["monotonic"], "monotonic": "up"}, f"{KEY}.monotonic", "unknown value 'up'"),
    ({"input": {"kind": "text"}, "properties": ["batch_invariant"]}, f"{KEY}.properties", "needs a batch"),
    ({"input": {**ARRAY_INPUT, "shape": [4, "batch"]}, "properties": ["batch_invariant"]}, f"{KEY}.input.shape", "named batch dimension first"),
    ({"input": {"kind": "scalar"}, "properties": ["no_mutation"]}, f"{KEY}.properties", "immutable"),
    ({"input": {"kind": "text"}, "properties": ["monotonic"]}, f"{KEY}.properties", "needs ordered inputs"),
    ({"input": ARRAY_INPUT, "properties": ["finite"], "tolerance": {"rtol": -1}}, f"{KEY}.tolerance.rtol", "negative"),
    ({"input": ARRAY_INPUT, "properties": ["finite"], "tolerance": {"eps": 1}}, f"{KEY}.tolerance.eps", "unknown key"),
    ({"input": ARRAY_INPUT, "properties": ["finite"], "tolerance": {}}, f"{KEY}.tolerance", "empty"),
    ({"input": ARRAY_INPUT, "properties": ["finite"], "max_examples": 0}, f"{KEY}.max_examples", "integer >= 1"),
    ({"input": ARRAY_INPUT, "properties": ["finite"], "deadline": -5}, f"{KEY}.deadline", "positive number of milliseconds"),
    ({"input": ARRAY_INPUT, "properties": ["finite"], "deadline": True}, f"{KEY}.deadline", "positive number of milliseconds"),
    ({"input": "array", "properties": ["finite"]}, f"{KEY}.input", "expected a table"),
]


@pytest.mark.parametrize(("table", "key", "problem"), INVALID_SPECS, ids=[case[1].removeprefix(KEY) + " " + case[2] for case in INVALID_SPECS])
def test_invalid_spec_names_key(table, key, problem):
    error = config_error(table)
    assert error.key == key
    assert problem in error.problem
    assert str(error).startswith(f"[tool.pytest-aiml] {key}: ")


def test_invalid_spec_error_gives_fix():
    error = config_error({"input": {**ARRAY_INPUT, "dtype": "float"}, "properties": ["finite"]})
    assert "float64" in error.fix


@pytest.mark.parametrize("reference", ["standardize", "churn.features:", ":standardize", "churn-features:standardize", "churn.features:standardize()"])
def test_malformed_function_reference_rejected(reference):
    with pytest.raises(ConfigError) as caught:
        parse_preprocessing_specs({reference: {"input": ARRAY_INPUT, "properties": ["finite"]}})
    assert caught.value.key == spec_key(reference)
    assert "not a 'module:function' reference" in caught.value.problem


def test_spec_that_is_not_a_table_rejected():
    with pytest.raises(ConfigError) as caught:
        parse_preprocessing_specs({"churn.features:standardize": ["finite"]})
    assert caught.value.key == KEY


def test_parsing_imports_nothing():
    # Parsing runs while pytest loads its configuration, so it must not import the
    # declared modules, NumPy or Hypothesis.
    script = (
        "import sys\n"
        "from pytest_aiml.properties.spec import parse_preprocessing_specs\n"
        "parse_preprocessing_specs({'missing_module_xyz:function': {'input': "
        "{'kind': 'array', 'dtype': 'float64', 'shape': ['batch', 4]}, 'properties': ['finite']}})\n"
        "print(sorted({'missing_module_xyz', 'numpy', 'hypothesis'} & set(sys.modules)))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_spec_key_quotes_references():
    assert spec_key("churn.features:standardize") == 'preprocessing."churn.features:standardize"'
    assert spec_key("standardize") == "preprocessing.standardize"
