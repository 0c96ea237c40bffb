"""ONNX validation: external data locations, ``onnx.checker``, opsets and the I/O signature.

onnx is imported only inside these functions, so inspecting a repository without
ONNX files never imports it. External data is checked before anything opens it: a
location must be relative, free of ``..`` and resolve (symlinks followed) inside
the model's folder, because onnx and onnxruntime read whatever path it names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from pytest_aiml.artifacts.findings import ArtifactFindings

_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def _graph_tensors(graph: Any) -> Iterator[Any]:
    """Yield every TensorProto of a graph: initializers, sparse ones, node attributes, subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _attribute_tensors(node.attribute)


def _attribute_tensors(attributes: Any) -> Iterator[Any]:
    for attribute in attributes:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        if attribute.HasField("g"):
            yield from _graph_tensors(attribute.g)
        for subgraph in attribute.graphs:
            yield from _graph_tensors(subgraph)


def _model_tensors(model: Any) -> Iterator[Any]:
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _attribute_tensors(node.attribute)


def external_location_problem(location: str, model_dir: Path) -> str | None:
    """Explain why an external data location is unsafe, or return None when it is safe."""
    if not location:
        return "empty location"
    if location.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(location) or PurePosixPath(location).is_absolute():
        return "absolute path"
    parts = set(PurePosixPath(location).parts) | set(PureWindowsPath(location).parts)
    if ".." in parts:
        return "'..' leaves the model's folder"
    base = os.path.realpath(model_dir)
    resolved = os.path.realpath(os.path.join(model_dir, location))
    if os.path.commonpath([base, resolved]) != base:
        return f"resolves outside the model's folder (to {resolved})"
    return None


def check_external_data(model: Any, path: Path, findings: ArtifactFindings) -> bool:
    """Add unsafe or missing external data locations to ``findings``; True when all are safe."""
    safe = True
    seen: set[str] = set()
    for tensor in _model_tensors(model):
        if tensor.data_location != _EXTERNAL:
            continue
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = entries.get("location", "")
        if location in seen:
            continue
        seen.add(location)
        problem = external_location_problem(location, path.parent)
        if problem is not None:
            safe = False
            findings.add_offending(f"tensor {tensor.name!r}: external data location '{location}': {problem}")
        elif not (path.parent / location).is_file():
            findings.add_invalid(f"tensor {tensor.name!r}: external data file {location!r} not found")
    return safe


def _value_info_text(value_info: Any, type_name: Any) -> tuple[str, str, int]:
    tensor_type = value_info.type.tensor_type
    dims = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(str(dim.dim_value))
        elif dim.HasField("dim_param"):
            dims.append(dim.dim_param)
        else:
            dims.append("?")
    dtype = type_name(tensor_type.elem_type) if tensor_type.elem_type else "non-tensor"
    shape = f"[{', '.join(dims)}]" if tensor_type.HasField("shape") else "[unknown rank]"
    return f"{value_info.name}: {dtype.lower()}{shape}", dtype.lower(), len(dims)


def describe_signature(model: Any, findings: ArtifactFindings) -> None:
    """Record opsets, inputs and outputs (named dynamic dimensions included) as notes."""
    from onnx import TensorProto

    type_name = TensorProto.DataType.Name
    opsets = ", ".join(f"{entry.domain or 'ai.onnx'} {entry.version}" for entry in model.opset_import)
    findings.notes.append(f"opset: {opsets or 'none declared'}")
    initializers = {tensor.name for tensor in model.graph.initializer}
    producers = {output: node.op_type for node in model.graph.node for output in node.output}
    for value_info in model.graph.input:
        if value_info.name not in initializers:
            findings.notes.append("input " + _value_info_text(value_info, type_name)[0])
    for value_info in model.graph.output:
        text, dtype, rank = _value_info_text(value_info, type_name)
        findings.notes.append("output " + text)
        producer = producers.get(value_info.name, "")
        findings.output_hints.append(f"{value_info.name}|{dtype}|{rank}|{producer}")
    findings.output_hints.extend(f"op|{node.op_type}" for node in model.graph.node if node.op_type in ("ZipMap", "Softmax", "ArgMax", "TopK"))


def check_onnx(path: Path, findings: ArtifactFindings, *, run_checker: bool) -> None:
    """Load the model graph (not its external data), check locations, signature and the checker."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError) as exc:
        findings.add_invalid(f"onnx.load failed: {exc}")
        return
    safe = check_external_data(model, path, findings)
    describe_signature(model, findings)
    if not run_checker or not safe:
        return
    try:
        # The path form lets the checker follow external data and models over 2 GB.
        onnx.checker.check_model(str(path), full_check=False)
    except (onnx.checker.ValidationError, ValueError, OSError, RuntimeError) as exc:
        findings.add_invalid(f"onnx.checker: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
