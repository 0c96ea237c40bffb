"""Running a Torch model or an ONNX session on an :class:`InputGroup`, outputs by name.

Parity and latency call models the same way through this module:

- the Torch model is called with one tensor per input, positionally in the input
  order of the group (the ONNX input order, which both Torch exporters keep);
- its result is matched to the ONNX output names. A dict whose keys are exactly
  those names is matched by key. Anything else is flattened (tuples and lists in
  order, dicts in insertion order) and matched by position, because that is how
  the exporters number outputs.

torch is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_aiml.serving.inputs import InputGroup

__all__ = [
    "OutputArray",
    "onnx_output_names",
    "run_onnx",
    "name_torch_outputs",
    "run_torch",
    "torch_inputs",
]


@dataclass(frozen=True, slots=True, eq=False)
class OutputArray:
    """One model output: its values and the dtype the model produced.

    ``dtype`` is the model's own element type. It differs from ``values.dtype``
    only for bfloat16 Torch outputs, which are widened to float32 because numpy
    has no bfloat16.
    """

    values: np.ndarray
    dtype: str


def onnx_output_names(session: Any) -> tuple[str, ...]:
    """Return the output names of an onnxruntime session in graph order."""
    return tuple(node.name for node in session.get_outputs())


def run_onnx(session: Any, group: InputGroup) -> dict[str, OutputArray]:
    """Run the session on the group and return every output by name."""
    names = onnx_output_names(session)
    results = session.run(list(names), group.feed())
    outputs = {}
    for name, value in zip(names, results):
        array = np.asarray(value)
        outputs[name] = OutputArray(array, _numpy_dtype_name(array))
    return outputs


def torch_inputs(group: InputGroup, device: str = "cpu") -> tuple[Any, ...]:
    """Convert the group's arrays to Torch tensors on ``device``, in input order."""
    import torch

    # torch.from_numpy shares memory; copy so a model that writes into its input
    # cannot change the arrays the ONNX session receives.
    return tuple(torch.from_numpy(np.array(array, copy=True)).to(device) for _, array in group.arrays)


def run_torch(
    model: Any,
    group: InputGroup,
    output_names: Sequence[str],
    *,
    device: str = "cpu",
) -> dict[str, OutputArray]:
    """Call the Torch model on the group without autograd and return outputs by name.

    Raises ``ValueError`` when the number of returned tensors differs from
    ``len(output_names)``.
    """
    import torch

    with torch.no_grad():
        result = model(*torch_inputs(group, device))
    return name_torch_outputs(result, output_names)


def name_torch_outputs(result: Any, output_names: Sequence[str]) -> dict[str, OutputArray]:
    """Match a Torch model's return value to ``output_names`` (see the module docstring)."""
    if isinstance(result, Mapping) and set(result) == set(output_names):
        return {name: _tensor_output(result[name]) for name in output_names}

    tensors = _flatten(result)
    if len(tensors) != len(output_names):
        raise ValueError(
            f"the Torch model returned {len(tensors)} tensors but the ONNX model has "
            f"{len(output_names)} outputs ({', '.join(output_names)}); return the same outputs "
            "from both, or a dict keyed by the ONNX output names"
        )
    return {name: _tensor_output(tensor) for name, tensor in zip(output_names, tensors)}


def _flatten(result: Any) -> list[Any]:
    if isinstance(result, Mapping):
        return [tensor for value in result.values() for tensor in _flatten(value)]
    if isinstance(result, (tuple, list)):
        return [tensor for value in result for tensor in _flatten(value)]
    return [result]


def _tensor_output(tensor: Any) -> OutputArray:
    import torch

    if not isinstance(tensor, torch.Tensor):
        array = np.asarray(tensor)
        return OutputArray(array, _numpy_dtype_name(array))
    dtype = str(tensor.dtype).removeprefix("torch.")
    detached = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        detached = detached.float()
    return OutputArray(detached.numpy(), dtype)


def _numpy_dtype_name(array: np.ndarray) -> str:
    return "bool" if array.dtype == np.bool_ else str(array.dtype)
