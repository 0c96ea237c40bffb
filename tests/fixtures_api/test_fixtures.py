"""The public fixtures: the artifact inventory and the loader that checks each file before loading it.

Every model is built at test time. The malicious pickles are inert: executed, they
would only create the marker file under tmp_path, and every test that builds one
asserts that the marker never appears.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

# Imported before any pytester run: an in-process run restores sys.modules
# afterwards, and a second import of torch in one process fails (torch 2.13).
import h5py
import joblib
import numpy as np
import onnx
import onnxruntime  # noqa: F401
import pytest
import torch
from onnx import TensorProto, helper

from pytest_aiml.fixtures import (
    ArtifactLoadError,
    UnsafeArtifactError,
    UnsupportedArtifactError,
    inspect_repository_artifacts,
    load_model,
)

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n"
)


class WritesMarker:
    """Pickles as builtins.exec(code), where the code would only create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.code = f"open({str(marker)!r}, 'w').close()"

    def __reduce__(self):
        return (exec, (self.code,))


@pytest.fixture
def marker(tmp_path: Path):
    path = tmp_path / "PAYLOAD_EXECUTED"
    yield path
    assert not path.exists(), "a malicious payload was executed"


def _linear() -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def _onnx_relu(path: Path, *, valid: bool = True) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    node = helper.make_node("Relu", ["x" if valid else "undefined"], ["y"])
    model = helper.make_model(helper.make_graph([node], "relu", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.model_version = 3
    helper.set_model_props(model, {"version": "1.0.0"})
    onnx.save(model, str(path))
    return path


# -- benign files load -------------------------------------------------------------


def test_state_dict_loads(tmp_path):
    model = _linear()
    path = tmp_path / "linear_v1.pt"
    torch.save(model.state_dict(), path)
    state = load_model(path)
    assert set(state) == {"weight", "bias"}
    assert torch.equal(state["weight"], model.weight.detach())


def test_bfloat16_state_dict_loads(tmp_path):
    path = tmp_path / "half.pth"
    torch.save({"w": torch.ones(2, 2, dtype=torch.bfloat16)}, path)
    assert load_model(path)["w"].dtype == torch.bfloat16


def test_legacy_torch_file_loads(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.arange(4.0)}, path, _use_new_zipfile_serialization=False)
    assert torch.equal(load_model(path)["w"], torch.arange(4.0))


def test_load_options_reach_torch_load(tmp_path):
    path = tmp_path / "mapped.pt"
    torch.save({"w": torch.arange(4.0)}, path)
    assert torch.equal(load_model(path, mmap=True, weights_only=True)["w"], torch.arange(4.0))


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
def test_torchscript_loads(tmp_path):
    model = _linear().eval()
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(model), path)
    loaded = load_model(path)
    assert isinstance(loaded, torch.jit.ScriptModule)
    sample = torch.randn(4, 3)
    assert torch.allclose(loaded(sample), model(sample))


def test_exported_program_loads(tmp_path):
    model = _linear().eval()
    exported = torch.export.export(model, (torch.randn(1, 3),))
    # torch.export.save stores sample inputs as a torch.save zip nested in the archive,
    # which the scanner reports as unscannable, so this program is saved without them.
    exported.example_inputs = None
    path = tmp_path / "linear.pt2"
    torch.export.save(exported, path)
    loaded = load_model(path)
    assert isinstance(loaded, torch.export.ExportedProgram)
    sample = torch.randn(1, 3)
    assert torch.allclose(loaded.module()(sample), model(sample))


def test_onnx_loads_as_cpu_session(tmp_path):
    session = load_model(_onnx_relu(tmp_path / "relu.onnx"))
    assert session.get_providers() == ["CPUExecutionProvider"]
    (output,) = session.run(None, {"x": np.array([[-1.0, 0.0, 2.0]], dtype=np.float32)})
    assert output.tolist() == [[0.0, 0.0, 2.0]]


def test_numpy_files_load(tmp_path):
    np.save(tmp_path / "array.npy", np.arange(3))
    np.savez(tmp_path / "arrays.npz", x=np.arange(3), y=np.ones(2))
    assert load_model(tmp_path / "array.npy").tolist() == [0, 1, 2]
    arrays = load_model(tmp_path / "arrays.npz")
    assert sorted(arrays) == ["x", "y"]
    assert arrays["y"].tolist() == [1.0, 1.0]


def test_safetensors_loads_when_installed(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    path = tmp_path / "weights.safetensors"
    safetensors_torch.save_file({"w": torch.ones(2)}, str(path))
    assert torch.equal(load_model(path)["w"], torch.ones(2))


# -- unsafe files are rejected before loading --------------------------------------


def test_malicious_pickle_as_pt_rejected(tmp_path, marker):
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps(WritesMarker(marker), protocol=2))
    with pytest.raises(UnsafeArtifactError) as caught:
        load_model(path)
    error = caught.value
    assert error.path == path
    assert error.check == "safety"
    assert error.status == "fail"
    assert any("builtins.exec" in detail for detail in error.details)
    assert str(path) in str(error)
    assert "builtins.exec" in str(error)


def test_malicious_torch_zip_rejected(tmp_path, marker):
    path = tmp_path / "checkpoint.pt"
    torch.save({"weights": torch.ones(2), "hook": WritesMarker(marker)}, path)
    with pytest.raises(UnsafeArtifactError, match="builtins.exec"):
        load_model(path)


def test_truncated_file_unscannable(tmp_path):
    path = tmp_path / "truncated.pt"
    data = pickle.dumps({"w": list(range(100))}, protocol=4)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnsafeArtifactError) as caught:
        load_model(path)
    assert caught.value.status == "unscannable"


def test_lfs_pointer_rejected(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_text(LFS_POINTER)
    with pytest.raises(UnsafeArtifactError, match="Git LFS pointer: fetch the object first") as caught:
        load_model(path)
    assert caught.value.status == "skip"


# -- formats that are never loaded -------------------------------------------------


@pytest.mark.parametrize("name", ["estimator.pkl", "estimator.joblib"])
def test_benign_pickle_never_loaded(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".joblib"):
        joblib.dump({"coef": np.ones(3)}, path)
    else:
        path.write_bytes(pickle.dumps({"coef": [0.5, 1.5]}))
    with pytest.raises(UnsupportedArtifactError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "never loaded" in message
    assert "safetensors" in message


def test_safetensors_without_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    path = tmp_path / "weights.safetensors"
    header = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    header += b" " * (-len(header) % 8)
    path.write_bytes(len(header).to_bytes(8, "little") + header + np.ones(2, dtype="<f4").tobytes())
    with pytest.raises(UnsupportedArtifactError, match="pip install safetensors"):
        load_model(path)


def test_hdf5_not_loaded(tmp_path):
    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as file:
        file["w"] = np.ones(3)
    with pytest.raises(UnsupportedArtifactError, match="does not load hdf5 files"):
        load_model(path)


# -- load failures and options -----------------------------------------------------


def test_invalid_onnx_rejected_by_checker(tmp_path):
    path = _onnx_relu(tmp_path / "broken.onnx", valid=False)
    with pytest.raises(ArtifactLoadError, match="onnx.checker rejected the model"):
        load_model(path)


def test_object_array_not_unpickled(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ArtifactLoadError, match="Object arrays need pickle"):
        load_model(path)


@pytest.mark.parametrize(
    "options",
    [{"weights_only": False}, {"allow_pickle": True}, {"pickle_module": pickle}],
    ids=["weights_only", "allow_pickle", "pickle_module"],
)
def test_pickle_enabling_options_rejected(tmp_path, options):
    path = tmp_path / "linear.pt"
    torch.save(_linear().state_dict(), path)
    with pytest.raises(ValueError, match="is not accepted"):
        load_model(path, **options)


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_model(tmp_path / "absent.pt")


# -- the inventory -----------------------------------------------------------------


def test_inventory_lists_model_files(tmp_path, marker):
    (tmp_path / "models").mkdir()
    torch.save(_linear().state_dict(), tmp_path / "models" / "linear_v1.pt")
    _onnx_relu(tmp_path / "models" / "relu.onnx")
    (tmp_path / "models" / "bad.pkl").write_bytes(pickle.dumps(WritesMarker(marker)))
    (tmp_path / "models" / "picture.pt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (tmp_path / "README.md").write_text("relu.onnx is a test model\n")
    inventory = inspect_repository_artifacts(tmp_path)
    assert [inspection.rel_path for inspection in inventory] == ["models/bad.pkl", "models/linear_v1.pt", "models/relu.onnx"]
    by_name = {inspection.name: inspection for inspection in inventory}
    assert by_name["bad.pkl"].checks["safety"].status == "fail"
    assert by_name["linear_v1.pt"].format == "torch-zip"
    assert by_name["linear_v1.pt"].version is not None
    assert by_name["relu.onnx"].checks["documentation"].status == "pass"


def test_module_imports_nothing_heavy():
    heavy = ["torch", "onnx", "onnxruntime", "numpy", "libcst", "yaml", "pytest_aiml.artifacts", "pytest_aiml.engine"]
    code = f"import sys, pytest_aiml.fixtures\nprint([name for name in {heavy!r} if name in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -- the fixtures in a user's test run ---------------------------------------------


def test_fixtures_in_user_tests(pytester: pytest.Pytester):
    models = pytester.mkdir("models")
    torch.save(_linear().state_dict(), models / "linear_v1.pt")
    _onnx_relu(models / "relu_v2.onnx")
    marker = pytester.path / "PAYLOAD_EXECUTED"
    (models / "evil_v1.pt").write_bytes(pickle.dumps(WritesMarker(marker), protocol=4))
    pytester.makepyfile(
        test_models=textwrap.dedent(
            """
            import pytest
            from pytest_aiml.fixtures import UnsafeArtifactError

            def test_inventory(aiml_artifacts):
                statuses = {a.rel_path: a.checks["safety"].status for a in aiml_artifacts}
                assert statuses == {
                    "models/evil_v1.pt": "fail",
                    "models/linear_v1.pt": "pass",
                    "models/relu_v2.onnx": "pass",
                }

            def test_benign_models_load(aiml_load_model):
                assert set(aiml_load_model("models/linear_v1.pt")) == {"weight", "bias"}
                session = aiml_load_model("models/relu_v2.onnx")
                assert [i.name for i in session.get_inputs()] == ["x"]

            def test_malicious_model_rejected(aiml_load_model):
                with pytest.raises(UnsafeArtifactError, match="models/evil_v1.pt"):
                    aiml_load_model("models/evil_v1.pt")
            """
        )
    )
    result = pytester.runpytest("-p", "pytest_aiml.fixtures", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert not marker.exists()
