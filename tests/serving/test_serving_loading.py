"""Loading TorchScript, torch.export, factory plus state dict, and ONNX files."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.serving.loading import (
    ModelLoadError,
    build_from_factory,
    load_onnx_session,
    load_torch_file,
    load_torch_model,
    onnx_providers,
    torch_file_format,
)
from pytest_aiml.serving.spec import ModelSpec

torch = pytest.importorskip("torch")


class Doubler(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        return x * self.scale


class NotATensor:
    """A class that a weights_only load must refuse to unpickle."""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_file_loads(tmp_path):
    path = tmp_path / "doubler.pt"
    torch.jit.save(torch.jit.script(Doubler()), str(path))

    model = load_torch_file(path)

    assert torch_file_format(path) == "torchscript"
    assert torch.equal(model(torch.ones(2)), torch.full((2,), 2.0))


@pytest.mark.parametrize("suffix", [".pt2", ".pt"])
def test_torch_export_file_loads(tmp_path, suffix):
    path = tmp_path / f"doubler{suffix}"
    program = torch.export.export(Doubler(), (torch.ones(3),))
    torch.export.save(program, str(path))

    model = load_torch_file(path)

    assert torch_file_format(path) == "torch.export"
    assert torch.equal(model(torch.ones(3)), torch.full((3,), 2.0))


def test_state_dict_as_torch_file_is_explained(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(Doubler().state_dict(), str(path))

    with pytest.raises(ModelLoadError) as info:
        load_torch_file(path)

    assert str(path) in str(info.value)
    assert "factory" in info.value.fix


def test_non_zip_torch_file_is_explained(tmp_path):
    path = tmp_path / "legacy.pt"
    path.write_bytes(pickle.dumps({"a": 1}))

    with pytest.raises(ModelLoadError, match="not a zip archive"):
        load_torch_file(path)


def test_factory_loads_weights(tmp_path):
    source = Doubler()
    with torch.no_grad():
        source.scale.fill_(5.0)
    weights = tmp_path / "state.pt"
    torch.save(source.state_dict(), str(weights))

    model = build_from_factory(Doubler, weights, reference="m:Doubler")

    assert model.scale.item() == 5.0
    assert not model.training


def test_factory_weights_with_objects_are_refused(tmp_path):
    weights = tmp_path / "state.pt"
    torch.save({"scale": torch.tensor(1.0), "extra": NotATensor()}, str(weights))

    with pytest.raises(ModelLoadError) as info:
        build_from_factory(Doubler, weights, reference="m:Doubler")

    assert info.value.source == str(weights)
    assert "weights_only=True" in info.value.problem


def test_factory_weights_must_match(tmp_path):
    weights = tmp_path / "state.pt"
    torch.save({"other": torch.tensor(1.0)}, str(weights))

    with pytest.raises(ModelLoadError, match="does not match the module"):
        build_from_factory(Doubler, weights, reference="m:Doubler")


def test_factory_must_return_a_module():
    with pytest.raises(ModelLoadError, match="not a torch.nn.Module"):
        build_from_factory(lambda: 3, None, reference="m:three")


def test_factory_error_names_reference():
    def broken():
        raise RuntimeError("no config")

    with pytest.raises(ModelLoadError, match="m:broken.*no config"):
        build_from_factory(broken, None, reference="m:broken")


def test_spec_with_unimportable_factory_names_key(tmp_path):
    spec = ModelSpec(name="m", factory="nowhere_pkg.model:build", key="models.m")

    with pytest.raises(ConfigError) as info:
        load_torch_model(spec, tmp_path)

    assert info.value.key == "models.m.factory"
    assert "nowhere_pkg.model:build" in str(info.value)


def test_onnx_session_opens_on_cpu(exported):
    session = load_onnx_session(exported["mlp"].onnx_path)

    assert "CPUExecutionProvider" in session.get_providers()
    assert onnx_providers(use_cuda=False) == ("CPUExecutionProvider",)


def test_corrupt_onnx_names_file(tmp_path: Path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a protobuf")

    with pytest.raises(ModelLoadError) as info:
        load_onnx_session(path)

    assert str(path) in str(info.value)
