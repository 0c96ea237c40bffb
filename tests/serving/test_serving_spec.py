"""Parsing of the [tool.pytest-aiml.models.<name>] tables, pairing and references."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.serving.spec import (
    InputSpec,
    LatencyBudget,
    ModelSpec,
    Tolerance,
    pair_artifacts,
    parse_model_specs,
    resolve_reference,
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    for name in ("churn_v2.onnx", "churn_v2.pt", "churn_v2_state.pt"):
        (models / name).write_bytes(b"placeholder")
    return tmp_path


def full_table() -> dict:
    return {
        "churn": {
            "onnx": "models/churn_v2.onnx",
            "torch": "models/churn_v2.pt",
            "inputs": [{"name": "features", "dtype": "float32", "shape": ["batch", 8],
                        "min": -3.0, "max": 3.0}],
            "sample_inputs": "churn.samples:batches",
            "serving": "churn.serve:predict",
            "tolerance": {"logits": {"rtol": 1e-3, "atol": 1e-5}},
            "latency": [{"device": "cpu", "batch": 1, "p95_ms": 20.0},
                        {"device": "cuda", "batch": 32, "p99_ms": 5.0}],
        }
    }


def parse_error(table: dict, root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_model_specs(table, root)
    return info.value


def test_full_table_parses(repo):
    (spec,) = parse_model_specs(full_table(), repo)

    assert spec == ModelSpec(
        name="churn",
        onnx=(repo / "models/churn_v2.onnx").resolve(),
        torch=(repo / "models/churn_v2.pt").resolve(),
        inputs=(InputSpec("features", "float32", ("batch", 8), -3.0, 3.0),),
        sample_inputs="churn.samples:batches",
        serving="churn.serve:predict",
        tolerance=(("logits", Tolerance(rtol=1e-3, atol=1e-5)),),
        latency=(LatencyBudget(device="cpu", batch=1, p95_ms=20.0),
                 LatencyBudget(device="cuda", batch=32, p99_ms=5.0)),
    )
    assert spec.key == "models.churn"
    assert spec.tolerance_overrides == {"logits": Tolerance(1e-3, 1e-5)}
    assert spec.inputs[0].dynamic_axes == (0,)
    assert spec.latency[0].budgeted_percentiles() == {"p95": 20.0}


def test_factory_with_weights_parses(repo):
    table = {"churn": {"onnx": "models/churn_v2.onnx", "factory": "churn.model:build",
                       "weights": "models/churn_v2_state.pt"}}

    (spec,) = parse_model_specs(table, repo)

    assert spec.factory == "churn.model:build"
    assert spec.weights == (repo / "models/churn_v2_state.pt").resolve()
    assert spec.has_torch


def test_models_sorted_by_name(repo):
    table = {"zeta": {"onnx": "models/churn_v2.onnx"}, "alpha": {"onnx": "models/churn_v2.onnx"}}

    assert [spec.name for spec in parse_model_specs(table, repo)] == ["alpha", "zeta"]


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        ({"onnxx": "a.onnx"}, "models.churn.onnxx", "unknown key 'onnxx'"),
        ({"onnx": "models/missing.onnx"}, "models.churn.onnx", "file not found"),
        ({"onnx": "models/churn_v2.pt"}, "models.churn.onnx", "does not end in .onnx"),
        ({"onnx": 3}, "models.churn.onnx", "expected a path string"),
        ({"factory": "churn.model:build"}, "models.churn.factory", "both 'torch' and 'factory'"),
        ({"weights": "models/churn_v2_state.pt"}, "models.churn.weights", "without 'factory'"),
        ({"serving": "churn.serve"}, "models.churn.serving", "invalid reference"),
        ({"sample_inputs": ["a:b"]}, "models.churn.sample_inputs", "expected a 'module:callable'"),
        ({"inputs": {"name": "x"}}, "models.churn.inputs", "expected an array"),
        ({"inputs": [{"name": "x", "dtype": "float32", "shape": [8], "low": 0}]},
         "models.churn.inputs[0].low", "unknown key 'low'"),
        ({"inputs": [{"name": "x", "dtype": "float99", "shape": [8]}]},
         "models.churn.inputs[0].dtype", "unknown dtype 'float99'"),
        ({"inputs": [{"name": "x", "dtype": "float32"}]}, "models.churn.inputs[0].shape", "missing"),
        ({"inputs": [{"name": "x", "dtype": "float32", "shape": [0]}]},
         "models.churn.inputs[0].shape[0]", "not positive"),
        ({"inputs": [{"name": "x", "dtype": "float32", "shape": [True]}]},
         "models.churn.inputs[0].shape[0]", "expected an integer or an axis name"),
        ({"inputs": [{"name": "x", "dtype": "float32", "shape": [8], "min": 2.0, "max": 1.0}]},
         "models.churn.inputs[0].min", "greater than max"),
        ({"inputs": [{"name": "x", "dtype": "float32", "shape": [8]},
                     {"name": "x", "dtype": "float32", "shape": [8]}]},
         "models.churn.inputs[1].name", "duplicate input name"),
        ({"tolerance": {"logits": {"rtol": 1e-3}}}, "models.churn.tolerance.logits.atol", "missing"),
        ({"tolerance": {"logits": {"rtol": -1.0, "atol": 0.0}}},
         "models.churn.tolerance.logits.rtol", "negative"),
        ({"tolerance": {"logits": {"rtol": "1e-3", "atol": 0.0}}},
         "models.churn.tolerance.logits.rtol", "expected a finite number"),
        ({"tolerance": {"logits": {"rtol": 0.0, "atol": 0.0, "eps": 1}}},
         "models.churn.tolerance.logits.eps", "unknown key"),
        ({"latency": [{"device": "tpu", "p95_ms": 1.0}]}, "models.churn.latency[0].device",
         "expected one of cpu, cuda"),
        ({"latency": [{"device": "cpu"}]}, "models.churn.latency[0]", "no percentile budget"),
        ({"latency": [{"device": "cpu", "p95_ms": 0}]}, "models.churn.latency[0].p95_ms", "not positive"),
        ({"latency": [{"device": "cpu", "p95_ms": 1.0, "batch": 0}]},
         "models.churn.latency[0].batch", "at least 1"),
        ({"latency": [{"device": "cpu", "p90_ms": 1.0}]}, "models.churn.latency[0].p90_ms", "unknown key"),
        ({"latency": [{"device": "cpu", "p95_ms": 1.0, "runtime": "tensorrt"}]},
         "models.churn.latency[0].runtime", "expected one of onnx, torch"),
        ({"latency": {"device": "cpu"}}, "models.churn.latency", "expected an array"),
    ],
)
def test_invalid_value_names_key(repo, change, key, problem):
    table = full_table()
    table["churn"].update(change)

    error = parse_error(table, repo)

    assert error.key == key
    assert problem in error.problem
    assert error.fix
    assert key in str(error)


def test_model_without_any_file_is_rejected(repo):
    error = parse_error({"churn": {"serving": "churn.serve:predict"}}, repo)

    assert error.key == "models.churn"
    assert "no model declared" in error.problem


def test_model_must_be_a_table(repo):
    error = parse_error({"churn": "models/churn_v2.onnx"}, repo)

    assert error.key == "models.churn"


def test_latency_sampling_keys_parse(repo):
    table = {"churn": {"onnx": "models/churn_v2.onnx",
                       "latency": [{"device": "cpu", "p50_ms": 2.0, "runtime": "torch",
                                    "warmup_calls": 0, "warmup_s": 0, "min_samples": 5,
                                    "min_s": 0.5, "max_s": 2}]}}

    (spec,) = parse_model_specs(table, repo)

    assert spec.latency[0] == LatencyBudget(device="cpu", batch=1, p50_ms=2.0, runtime="torch",
                                            warmup_calls=0, warmup_s=0.0, min_samples=5,
                                            min_s=0.5, max_s=2.0)


def test_pairing_same_stem_in_one_folder(tmp_path):
    files = ["models/churn.onnx", "models/churn.pt", "models/ranker.onnx", "models/ranker.pt2",
             "models/ranker.pt", "models/lonely.onnx", "other/churn.pt", "models/notes.txt"]

    pairs = pair_artifacts(tmp_path, [Path(name) for name in files])

    assert [(spec.name, spec.onnx, spec.torch) for spec in pairs] == [
        ("models/churn", tmp_path / "models/churn.onnx", tmp_path / "models/churn.pt"),
        ("models/ranker", tmp_path / "models/ranker.onnx", tmp_path / "models/ranker.pt2"),
    ]
    assert all(spec.source == "auto-paired" and spec.inputs == () for spec in pairs)


def test_pairing_accepts_absolute_paths(tmp_path):
    pairs = pair_artifacts(tmp_path, [tmp_path / "m.onnx", tmp_path / "m.PT"])

    assert [spec.name for spec in pairs] == ["m"]


@pytest.fixture
def importable_repo(tmp_path: Path) -> Path:
    package = tmp_path / "spec_ref_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "serve.py").write_text(
        "LIMIT = 3\n\n\ndef predict(x):\n    return x\n\n\nclass Holder:\n"
        "    @staticmethod\n    def build():\n        return 1\n")
    (package / "broken.py").write_text("import module_that_does_not_exist\n")
    (package / "crashing.py").write_text("raise RuntimeError('settings file missing')\n")
    return tmp_path


def test_reference_resolves_from_repository_root(importable_repo):
    before = list(sys.path)

    function = resolve_reference("spec_ref_pkg.serve:predict", importable_repo, "models.m.serving")

    assert function(5) == 5
    assert sys.path == before
    assert resolve_reference("spec_ref_pkg.serve:Holder.build", importable_repo, "k")() == 1


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("spec_ref_pkg.missing:predict", "cannot import module 'spec_ref_pkg.missing'"),
        ("spec_ref_pkg.broken:predict", "module_that_does_not_exist"),
        ("spec_ref_pkg.crashing:predict", "raised RuntimeError: settings file missing"),
        ("spec_ref_pkg.serve:predikt", "has no attribute 'predikt'"),
        ("spec_ref_pkg.serve:LIMIT", "not a callable"),
        ("spec_ref_pkg.serve", "invalid reference"),
    ],
)
def test_unresolvable_reference_names_key_and_value(importable_repo, reference, problem):
    before = list(sys.path)

    with pytest.raises(ConfigError) as info:
        resolve_reference(reference, importable_repo, "models.m.serving")

    assert info.value.key == "models.m.serving"
    assert problem in info.value.problem
    assert reference in str(info.value) or "predikt" in str(info.value)
    assert sys.path == before
