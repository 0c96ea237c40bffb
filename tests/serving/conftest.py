"""Small Torch models and their ONNX exports, built once per test session.

Sound models are exported with the ``torch.export``-based exporter
(``dynamo=True``, the default since torch 2.9), which needs onnxscript. The broken
exports use the TorchScript-based exporter (``dynamo=False``): it traces, so it
silently bakes in a batch size read through ``int()`` and freezes a
data-dependent branch, which is exactly the skew parity has to catch. The
``torch.export`` exporter rejects both patterns at export time instead.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

FEATURES = 8
CLASSES = 3
EXPORT_BATCH = 2


class MLP(torch.nn.Module):
    """A two-layer classifier over ``FEATURES`` features."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(FEATURES, 16),
            torch.nn.ReLU(),
            torch.nn.Linear(16, CLASSES),
        )

    def forward(self, features):
        return self.layers(features)


class CNN(torch.nn.Module):
    """A small image classifier with two outputs: logits and pooled features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, kernel_size=3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, image):
        pooled = self.pool(torch.relu(self.conv(image))).flatten(1)
        return self.head(pooled), pooled


class BatchMeanMLP(MLP):
    """Divides by the batch size read with ``int()``: tracing bakes in the export batch."""

    def forward(self, features):
        return self.layers(features) / int(features.shape[0])


class BranchMLP(MLP):
    """Negates its output unless the batch mean is low: tracing keeps one branch."""

    def forward(self, features):
        if features.mean() < -0.5:
            return self.layers(features)
        return -self.layers(features)


class HalfPrecisionMLP(torch.nn.Module):
    """The MLP's weights cast to float16: its export computes and returns float16."""

    def __init__(self, reference: MLP) -> None:
        super().__init__()
        self.layers = copy.deepcopy(reference.layers).half()

    def forward(self, features):
        return self.layers(features.half())


@dataclass(frozen=True)
class ExportedPair:
    """A Torch model and the path of its ONNX export."""

    model: torch.nn.Module
    onnx_path: Path


def export_dynamo(model, example, path: Path, input_name: str, output_names: list[str]) -> Path:
    """Export with the torch.export-based exporter and a dynamic leading axis."""
    parameter = next(iter(inspect.signature(model.forward).parameters))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=output_names,
            dynamo=True,
            dynamic_shapes={parameter: {0: torch.export.Dim("batch")}},
            # One self-contained file, so tests can copy it alone: this exporter
            # otherwise writes the weights to a "<name>.onnx.data" file beside it.
            external_data=False,
            verbose=False,
        )
    return path


def export_traced(model, example, path: Path, *, dynamic_batch: bool = True) -> Path:
    """Export with the TorchScript-based (tracing) exporter."""
    axes = {"features": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["features"],
            output_names=["logits"],
            dynamo=False,
            dynamic_axes=axes,
        )
    return path


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> dict[str, ExportedPair]:
    """Every test model with its ONNX export, keyed by a short name."""
    folder = tmp_path_factory.mktemp("exports")
    torch.manual_seed(0)
    example = torch.randn(EXPORT_BATCH, FEATURES)

    mlp = MLP().eval()
    cnn = CNN().eval()
    batch_mean = BatchMeanMLP().eval()
    branch = BranchMLP().eval()
    half = HalfPrecisionMLP(mlp).eval()

    pairs = {
        "mlp": ExportedPair(mlp, export_dynamo(mlp, example, folder / "mlp.onnx", "features", ["logits"])),
        "cnn": ExportedPair(cnn, export_dynamo(cnn, torch.randn(EXPORT_BATCH, 3, 16, 16),
                                               folder / "cnn.onnx", "image", ["logits", "pooled"])),
        "mlp_fixed_batch": ExportedPair(mlp, export_traced(mlp, example, folder / "mlp_fixed.onnx",
                                                           dynamic_batch=False)),
        "batch_baked": ExportedPair(batch_mean, export_traced(batch_mean, example,
                                                              folder / "batch_baked.onnx")),
        # Traced on an all-negative batch, so the first branch is frozen into the
        # graph while generated inputs (mean near 0) take the second in Torch.
        "branch": ExportedPair(branch, export_traced(branch, -torch.ones(EXPORT_BATCH, FEATURES),
                                                     folder / "branch.onnx")),
        # The float32 MLP is the reference; its float16 copy is what was exported.
        "half": ExportedPair(mlp, export_dynamo(half, example, folder / "half.onnx",
                                                "features", ["logits"])),
    }
    return pairs
