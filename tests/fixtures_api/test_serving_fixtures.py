"""The comparison and latency fixtures, and waivers on tests that load models."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

EXPORT = '''
import warnings

import torch


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

    def forward(self, features):
        return self.layers(features)


class Halved(MLP):
    def forward(self, features):
        return self.layers(features) / int(features.shape[0])


def export(model, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.randn(2, 4),), str(path), input_names=["features"], output_names=["logits"],
            dynamo=False, dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}},
        )
'''

USER_TESTS = '''
import pytest
import torch

from exports import MLP, Halved, export


def test_sound_export_matches(aiml_compare_models, tmp_path):
    model = MLP().eval()
    export(model, tmp_path / "mlp.onnx")
    result = aiml_compare_models(model, tmp_path / "mlp.onnx")
    assert result.passed


def test_baked_batch_is_caught(aiml_compare_models, tmp_path):
    model = Halved().eval()
    export(model, tmp_path / "halved.onnx")
    with pytest.raises(AssertionError, match="max abs error"):
        aiml_compare_models(model, tmp_path / "halved.onnx")


def test_latency_within_budget(aiml_measure_latency):
    model = MLP().eval()
    batch = torch.randn(1, 4)
    result = aiml_measure_latency(lambda: model(batch), p95_ms=10_000.0, min_samples=20, min_s=0.05)
    assert result.stats.samples >= 20


def test_latency_over_budget(aiml_measure_latency):
    model = MLP().eval()
    batch = torch.randn(1, 4)
    with pytest.raises(AssertionError, match="p50"):
        aiml_measure_latency(lambda: model(batch), p50_ms=0.000001, min_samples=20, min_s=0.05)


def test_cuda_budget_skips_without_gpu(aiml_measure_latency):
    aiml_measure_latency(lambda: None, device="cuda", p99_ms=5.0)
'''

WAIVED_LOAD = '''
import pytest

from pytest_aiml.fixtures import UnsafeArtifactError


def test_unwaived_load_is_refused(aiml_load_model):
    with pytest.raises(UnsafeArtifactError):
        aiml_load_model("weights.pt")


@pytest.mark.aiml_waive("AIML701", reason="legacy checkpoint, reviewed")
def test_waived_load_uses_weights_only(aiml_load_model):
    with pytest.raises(Exception, match="Weights only load failed|weights_only"):
        aiml_load_model("weights.pt")
'''


def test_compare_and_latency_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(exports=EXPORT, test_models=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=4, skipped=1)
    result.stdout.fnmatch_lines(["*no CUDA GPU available*"])


def test_waived_test_loads_through_weights_only(pytester: pytest.Pytester) -> None:
    marker = pytester.path / "payload-ran"
    # An inert payload, inside a torch zip: if anything unpickled it, it would create the marker.
    import io
    import zipfile

    payload = f"cbuiltins\\nopen\\n(S'{marker}'\\nS'w'\\ntR.".encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("weights/data.pkl", payload)
        archive.writestr("weights/version", "3\\n")
    (pytester.path / "weights.pt").write_bytes(buffer.getvalue())
    pytester.makepyfile(test_load=WAIVED_LOAD)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert not marker.exists()
