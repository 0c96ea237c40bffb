"""Declared checks end to end: preprocessing properties and served models in pyproject.toml."""

from __future__ import annotations

import shutil
import textwrap
import warnings
from pathlib import Path

import pytest
import yaml

from tests.report_validation import assert_valid_report

PREPROCESSING_PYPROJECT = """
[tool.pytest.ini_options]

[tool.pytest-aiml]
select = ["AIML801", "AIML802"]

[tool.pytest-aiml.preprocessing."features:standardize"]
input = { kind = "array", dtype = "float64", shape = ["batch", 3], min = -100.0, max = 100.0 }
properties = ["deterministic", "finite", "no_mutation"]
max_examples = 40

[tool.pytest-aiml.preprocessing."features:center_in_place"]
input = { kind = "array", dtype = "float64", shape = ["batch", 3], min = -100.0, max = 100.0 }
properties = ["deterministic", "no_mutation"]
max_examples = 40

[tool.pytest-aiml.preprocessing."features:scale"]
input = { kind = "array", dtype = "float64", shape = ["batch", 2], min = -10.0, max = 10.0 }
properties = ["deterministic"]
matches = "serving:scale"
tolerance = { rtol = 1e-9, atol = 1e-12 }
max_examples = 40
"""

FEATURES = '''
import numpy as np


def standardize(batch):
    std = batch.std(axis=0)
    return (batch - batch.mean(axis=0)) / np.where(std == 0, 1.0, std)


def center_in_place(batch):
    batch -= batch.mean(axis=0)
    return batch


def scale(batch):
    return batch * 0.5 + 1.0
'''

SERVING_TWIN = '''
import numpy as np


def scale(batch):
    return np.round(batch * 0.5 + 1.0, 2)
'''


def _write_preprocessing_repo(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(PREPROCESSING_PYPROJECT)
    pytester.makepyfile(features=FEATURES, serving=SERVING_TWIN)


# Without hypothesis's own pytest plugin too: the docs offer to block it in repositories
# that do not use hypothesis, and the property checks call hypothesis directly.
@pytest.mark.parametrize(
    "workers", [[], ["-n", "2"], ["-p", "no:hypothesispytest"]], ids=["serial", "xdist", "no-hypothesis-plugin"]
)
def test_preprocessing_properties(pytester: pytest.Pytester, workers: list[str]) -> None:
    _write_preprocessing_repo(pytester)
    result = pytester.runpytest("--aiml", "--aiml-report=report.yaml", "-p", "no:cacheprovider", "-rA", *workers)
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 2
    assert outcomes["passed"] == 5
    output = result.stdout.str()
    assert "FAILED pyproject.toml::AIML801-preprocessing-property[features:center_in_place-no_mutation]" in output
    assert "FAILED pyproject.toml::AIML802-preprocessing-skew[features:scale-matches]" in output
    assert "falsifying example" in output
    report = yaml.safe_load((pytester.path / "report.yaml").read_text())
    assert_valid_report(report)
    details = report["aiml_analysis"]["x_pytest_aiml"]
    assert details["preprocessing"]["features:center_in_place"] == {"deterministic": "passed", "no_mutation": "failed"}
    assert details["preprocessing"]["features:scale"]["matches"] == "failed"
    assert report["aiml_analysis"]["feature_engineering"]["training_serving_skew_risk"] == "high"


def test_ci_mode_is_reproducible(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_preprocessing_repo(pytester)
    monkeypatch.setenv("CI", "true")
    first = pytester.runpytest("--aiml", "-p", "no:cacheprovider", "-q")
    second = pytester.runpytest("--aiml", "-p", "no:cacheprovider", "-q")
    examples = [line for line in first.stdout.lines if "falsifying example" in line]
    assert examples
    assert examples == [line for line in second.stdout.lines if "falsifying example" in line]


def test_unimportable_function_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        textwrap.dedent(
            """
            [tool.pytest-aiml.preprocessing."missing_module:standardize"]
            input = { kind = "array", dtype = "float64", shape = ["batch", 3] }
            properties = ["deterministic"]
            """
        )
    )
    result = pytester.runpytest("--aiml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(['*preprocessing."missing_module:standardize"*cannot import*'])


torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

NETWORKS = '''
import torch


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

    def forward(self, features):
        return self.layers(features)


class BatchMean(MLP):
    def forward(self, features):
        return self.layers(features) / int(features.shape[0])


def build_batch_mean():
    return BatchMean()
'''

SERVE = '''
def predict(features):
    return features.sum(axis=1)


def predict_checked(features):
    import numpy as np

    if not isinstance(features, np.ndarray) or features.dtype != np.float32:
        raise TypeError("features must be a float32 array")
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] != 4:
        raise ValueError("features must have shape (batch, 4) with batch > 0")
    if not np.isfinite(features).all():
        raise ValueError("features must be finite")
    return features.sum(axis=1)
'''

SERVING_PYPROJECT = """
[tool.pytest.ini_options]

[tool.pytest-aiml]
select = ["AIML81"]

[tool.pytest-aiml.models.broken]
onnx = "models/broken.onnx"
factory = "networks:build_batch_mean"
weights = "models/broken_state.pt"

[tool.pytest-aiml.models.unchecked]
onnx = "models/mlp.onnx"
inputs = [{ name = "features", dtype = "float32", shape = ["batch", 4], min = -3.0, max = 3.0 }]
serving = "serve:predict"
latency = [{ device = "cpu", batch = 1, p95_ms = 10000.0, min_samples = 20, min_s = 0.05 }, { device = "cpu", batch = 4, p50_ms = 0.00001, min_samples = 20, min_s = 0.05 }, { device = "cuda", batch = 1, p99_ms = 5.0 }]

[tool.pytest-aiml.models.checked]
onnx = "models/mlp.onnx"
inputs = [{ name = "features", dtype = "float32", shape = ["batch", 4], min = -3.0, max = 3.0 }]
serving = "serve:predict_checked"
"""


def _export(model, path: Path, *, dynamo: bool) -> None:
    example = torch.randn(2, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(
                model, (example,), str(path), input_names=["features"], output_names=["logits"], dynamo=True,
                dynamic_shapes={"features": {0: torch.export.Dim("batch")}}, external_data=False, verbose=False,
            )
        else:
            torch.onnx.export(
                model, (example,), str(path), input_names=["features"], output_names=["logits"], dynamo=False,
                dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}},
            )


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Export the test models once per session.

    Session scope matters beyond speed: pytester drops the modules a test imported when
    the test ends, and torch's exporter cannot be imported a second time in one process.
    A session fixture runs before any test's pytester takes its snapshot.
    """
    models = tmp_path_factory.mktemp("declared-models")
    namespace: dict = {}
    exec(compile(NETWORKS, "networks.py", "exec"), namespace)
    torch.manual_seed(0)
    mlp = namespace["MLP"]().eval()
    _export(mlp, models / "mlp.onnx", dynamo=True)
    # A TorchScript file beside an ONNX file of the same stem is paired without any declaration.
    _export(mlp, models / "auto.onnx", dynamo=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(mlp, torch.randn(2, 4)), str(models / "auto.pt"))
    broken = namespace["BatchMean"]().eval()
    torch.save(broken.state_dict(), models / "broken_state.pt")
    _export(broken, models / "broken.onnx", dynamo=False)
    return models


@pytest.fixture
def serving_repo(pytester: pytest.Pytester, exported_models: Path) -> pytest.Pytester:
    pytester.makepyprojecttoml(SERVING_PYPROJECT)
    pytester.makepyfile(networks=NETWORKS, serve=SERVE)
    shutil.copytree(exported_models, pytester.path / "models")
    return pytester


def test_serving_checks(serving_repo: pytest.Pytester) -> None:
    result = serving_repo.runpytest("--aiml", "--aiml-report=report.yaml", "-p", "no:cacheprovider", "-rA")
    output = result.stdout.str()
    assert "PASSED pyproject.toml::AIML811-onnx-torch-parity[models/auto]" in output
    assert "FAILED pyproject.toml::AIML811-onnx-torch-parity[broken]" in output
    assert "FAILED pyproject.toml::AIML812-serving-input-probes[unchecked]" in output
    assert "PASSED pyproject.toml::AIML812-serving-input-probes[checked]" in output
    assert "PASSED pyproject.toml::AIML813-latency-budget[unchecked-cpu-batch1]" in output
    assert "FAILED pyproject.toml::AIML813-latency-budget[unchecked-cpu-batch4]" in output
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] pyproject.toml:11: no CUDA GPU available*"])
    assert "max abs" in output.lower() or "max_abs" in output.lower()
    assert "nan" in output
    report = yaml.safe_load((serving_repo.path / "report.yaml").read_text())
    assert_valid_report(report)
    analysis = report["aiml_analysis"]
    assert "unchecked: p95 10000ms (cpu, batch 1)" in analysis["serving"]["latency_target"]
    assert analysis["serving"]["throughput"]
    latency = analysis["x_pytest_aiml"]["serving_checks"]["unchecked"]["latency"]
    assert {entry["batch"] for entry in latency if entry["status"] != "skipped"} == {1, 4}
    assert all(entry["stats"]["samples"] >= 20 for entry in latency if entry["stats"])
    assert analysis["feature_engineering"]["training_serving_skew_risk"] == "high"


def test_malicious_weights_are_never_loaded(serving_repo: pytest.Pytester) -> None:
    marker = serving_repo.path / "payload-ran"
    # An inert payload: if anything unpickled it, it would only create the marker file.
    payload = f"cbuiltins\nopen\n(S'{marker}'\nS'w'\ntR.".encode()
    (serving_repo.path / "models" / "broken_state.pt").write_bytes(payload)
    result = serving_repo.runpytest("--aiml", "-k", "broken", "-p", "no:cacheprovider", "-rA")
    assert not marker.exists()
    result.stdout.fnmatch_lines(["*models/broken_state.pt AIML811 not loaded:*builtins.open*"])


def test_sample_inputs_hook_adds_batches(serving_repo: pytest.Pytester) -> None:
    serving_repo.makeconftest(
        """
        import numpy as np

        def pytest_aiml_sample_inputs(spec, root):
            if spec.name == "models/auto":
                return [{"features": np.full((5, 4), 0.25, dtype=np.float32)}]
            return None
        """
    )
    result = serving_repo.runpytest(
        "--aiml-only", "-k", "AIML811 and auto", "--aiml-report=report.yaml", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    report = yaml.safe_load((serving_repo.path / "report.yaml").read_text())
    parity = report["aiml_analysis"]["x_pytest_aiml"]["serving_checks"]["models/auto"]["parity"]
    assert [5, 4] in [group["input_shapes"]["features"] for group in parity["groups"]]


def test_declared_model_fixture(serving_repo: pytest.Pytester) -> None:
    serving_repo.makepyfile(
        test_user="""
        import numpy as np
        import pytest


        def test_broken_model_loads_both_sides(aiml_declared_model, aiml_compare_models):
            torch_model, session = aiml_declared_model("broken")
            assert torch_model is not None and session is not None
            with pytest.raises(AssertionError, match="max abs error"):
                aiml_compare_models(torch_model, session)


        def test_unknown_name(aiml_declared_model):
            with pytest.raises(KeyError, match="declared: broken, checked, unchecked"):
                aiml_declared_model("churn")
        """
    )
    result = serving_repo.runpytest("test_user.py", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
