"""Parity between real Torch models and their real ONNX exports."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pytest_aiml.serving.inputs import generate_input_groups, signature_from_session
from pytest_aiml.serving.loading import load_onnx_session
from pytest_aiml.serving.parity import check_model_parity, check_parity
from pytest_aiml.serving.spec import InputSpec, Tolerance, parse_model_specs

torch = pytest.importorskip("torch")


def run_parity(pair, name, **kwargs):
    session = load_onnx_session(pair.onnx_path, providers=["CPUExecutionProvider"])
    groups = generate_input_groups(signature_from_session(session), seed=0)
    return check_parity(pair.model, session, groups, model_name=name, **kwargs), session, groups


def assert_builtins_only(value):
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            assert_builtins_only(item)
    elif isinstance(value, list):
        for item in value:
            assert_builtins_only(item)
    else:
        assert value is None or type(value) in (bool, int, float, str), repr(value)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_sound_export_passes(exported, name):
    result, _, groups = run_parity(exported[name], name)

    assert result.passed, result.failure_text()
    assert result.failure_text() == ""
    assert len(result.groups) >= 2
    batch_sizes = {group.input_shapes[0][1][0] for group in result.groups}
    assert len(batch_sizes) >= 2
    assert any(size > 1 and size != 2 for size in batch_sizes)


def test_cnn_compares_every_output_by_name(exported):
    result, _, _ = run_parity(exported["cnn"], "cnn")

    names = [output.name for output in result.groups[0].outputs]
    assert names == ["logits", "pooled"]
    assert set(result.worst_by_output()) == {"logits", "pooled"}


@pytest.mark.parametrize("name", ["batch_baked", "branch", "half"])
def test_broken_export_fails_with_figures(exported, name):
    result, _, _ = run_parity(exported[name], name)

    assert not result.passed
    worst = result.worst_by_output()["logits"]
    assert worst["passed"] is False
    assert worst["max_abs_error"] > 0
    assert worst["atol_needed"] > 0
    text = result.failure_text()
    assert f"model {name!r}" in text
    assert "max abs error" in text
    assert "would pass with" in text
    assert "features[" in text


def test_batch_baked_export_passes_at_export_size(exported):
    # The baked-in divisor is right at the export batch size of 2, so only the
    # other sizes expose it.
    session = load_onnx_session(exported["batch_baked"].onnx_path)
    groups = generate_input_groups(signature_from_session(session), axis_sizes={"batch": [2, 5]})
    result = check_parity(exported["batch_baked"].model, session, groups)

    assert result.groups[0].passed
    assert not result.groups[1].passed


def test_half_export_reports_dtype_change(exported):
    result, _, _ = run_parity(exported["half"], "half")

    output = result.groups[0].outputs[0]
    assert output.onnx_dtype == "float16"
    assert output.torch_dtype == "float32"
    assert "dtype differs: ONNX float16, Torch float32" in output.problems
    assert output.comparison is not None


@pytest.mark.parametrize("name", ["mlp", "batch_baked", "branch", "half"])
def test_figures_match_direct_comparison(exported, name):
    result, session, groups = run_parity(exported[name], name)

    for group, group_result in zip(groups, result.groups):
        onnx_values = session.run(["logits"], group.feed())[0].astype(np.float64)
        with torch.no_grad():
            torch_values = exported[name].model(torch.from_numpy(group.feed()["features"])).numpy()
        torch_values = torch_values.astype(np.float64)
        difference = np.abs(onnx_values - torch_values)
        comparison = group_result.outputs[0].comparison

        assert comparison.max_abs_error == pytest.approx(difference.max(), rel=1e-9, abs=1e-12)
        assert comparison.max_rel_error == pytest.approx(
            (difference / np.abs(torch_values)).max(), rel=1e-9)
        expected_index = np.unravel_index(np.argmax(difference), difference.shape)
        if difference.max() > 0:
            assert comparison.max_abs_index == tuple(int(i) for i in expected_index)
        outside = difference > comparison.tolerance.atol + comparison.tolerance.rtol * np.abs(torch_values)
        assert comparison.mismatched == int(outside.sum())


@pytest.mark.parametrize("name", ["batch_baked", "branch"])
def test_suggested_tolerance_would_pass(exported, name):
    result, session, groups = run_parity(exported[name], name)
    worst = result.worst_by_output()["logits"]

    loose_atol = Tolerance(rtol=1e-3, atol=worst["atol_needed"] * (1 + 1e-9))
    rerun = check_parity(exported[name].model, session, groups, tolerances={"logits": loose_atol})
    assert rerun.passed, rerun.failure_text()
    if math.isfinite(worst["rtol_needed"]):
        loose_rtol = Tolerance(rtol=worst["rtol_needed"] * (1 + 1e-9), atol=1e-5)
        rerun = check_parity(exported[name].model, session, groups, tolerances={"logits": loose_rtol})
        assert rerun.passed, rerun.failure_text()


def test_to_dict_holds_builtins_only(exported):
    result, _, _ = run_parity(exported["branch"], "branch")
    data = result.to_dict()

    assert_builtins_only(data)
    assert data["passed"] is False
    assert data["model"] == "branch"
    assert data["providers"] == ["CPUExecutionProvider"]
    assert data["groups"][0]["input_shapes"] == {"features": [1, 8]}
    assert set(data["groups"][0]["outputs"][0]["comparison"]) >= {
        "max_abs_error", "max_abs_index", "max_rel_error", "rtol_needed", "atol_needed"}
    json.dumps(data)


def test_fixed_batch_signature_keeps_its_size(exported):
    # Without declared inputs the ONNX signature is the contract: a batch fixed
    # at export is fed at that size only, and the two models agree there.
    result, _, _ = run_parity(exported["mlp_fixed_batch"], "fixed")

    assert result.passed, result.failure_text()
    assert [group.input_shapes[0][1][0] for group in result.groups] == [2, 2]


def test_declared_dynamic_batch_against_fixed_export(exported):
    session = load_onnx_session(exported["mlp_fixed_batch"].onnx_path)
    declared = (InputSpec("features", "float32", ("batch", 8)),)
    groups = generate_input_groups(declared)
    from pytest_aiml.serving.inputs import check_signature

    problems = check_signature(declared, signature_from_session(session))
    result = check_parity(exported["mlp"].model, session, groups, signature_problems=problems)

    assert not result.passed
    assert "fixes it to 2" in result.failure_text()
    assert any(group.error and group.error.startswith("onnxruntime failed") for group in result.groups)


def test_unknown_tolerance_output_fails(exported):
    result, _, _ = run_parity(exported["mlp"], "mlp", tolerances={"probs": Tolerance(1e-3, 1e-5)})

    assert not result.passed
    assert "unknown outputs ['probs']" in result.failure_text()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_model_parity_from_config_torchscript(exported, tmp_path):
    pair = exported["mlp"]
    scripted = torch.jit.trace(pair.model, (torch.randn(2, 8),))
    torch.jit.save(scripted, str(tmp_path / "mlp.pt"))
    (tmp_path / "mlp.onnx").write_bytes(pair.onnx_path.read_bytes())
    table = {"mlp": {"onnx": "mlp.onnx", "torch": "mlp.pt",
                     "inputs": [{"name": "features", "dtype": "float32", "shape": ["batch", 8],
                                 "min": -3.0, "max": 3.0}]}}
    (spec,) = parse_model_specs(table, tmp_path)

    result = check_model_parity(spec, tmp_path)

    assert result.passed, result.failure_text()
    assert result.model == "mlp"


FACTORY_MODULE = """
import torch


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))

    def forward(self, features):
        return self.layers(features)


def build():
    return MLP()


def batches():
    return [torch.zeros(4, 8), {"features": torch.ones(1, 8)}]
"""


def test_model_parity_from_factory_and_samples(exported, tmp_path):
    pair = exported["mlp"]
    torch.save(pair.model.state_dict(), str(tmp_path / "state.pt"))
    (tmp_path / "mlp.onnx").write_bytes(pair.onnx_path.read_bytes())
    package = tmp_path / "parity_factory_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(FACTORY_MODULE)
    table = {"mlp": {"onnx": "mlp.onnx", "factory": "parity_factory_pkg.models:build",
                     "weights": "state.pt", "sample_inputs": "parity_factory_pkg.models:batches"}}
    (spec,) = parse_model_specs(table, tmp_path)

    result = check_model_parity(spec, tmp_path)

    assert result.passed, result.failure_text()
    assert [group.label for group in result.groups] == ["group 1", "group 2", "sample 1", "sample 2"]
    assert dict(result.groups[2].input_shapes) == {"features": (4, 8)}
