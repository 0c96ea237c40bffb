"""Keras model configs: ``Lambda`` layers and references to code outside Keras.

A ``.keras`` file is a zip whose ``config.json`` describes the model; a Keras 2 ``.h5``
file keeps the same JSON in the root attribute ``model_config``. Loading either can
run code: a ``Lambda`` layer carries marshalled Python bytecode, ``TFOpLambda``
calls any TensorFlow function by name, and a Keras 3 config names the module of
every object it deserialises. The whole config is walked, nested models included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_aiml.artifacts.findings import ArtifactFindings

# Layers whose config holds code or a function reference that loading calls.
CODE_LAYERS = {
    "Lambda": "Lambda layer holds Python bytecode that runs when the model is loaded or called",
    "TFOpLambda": "TFOpLambda calls a TensorFlow function named in the file",
    "SlicingOpLambda": "SlicingOpLambda calls a TensorFlow function named in the file",
}
# Keras 3 serialises these marker types without a module; "__lambda__" is bytecode.
_CODE_MARKERS = {"__lambda__": "serialised lambda function (Python bytecode)"}
MAX_DEPTH = 200


def _module_is_keras(module: str) -> bool:
    root = module.split(".", 1)[0]
    return root in ("keras", "tf_keras", "keras_core") or module.startswith("tensorflow.keras")


def walk_keras_config(config: Any, findings: ArtifactFindings) -> None:
    """Walk a parsed config and add every code-bearing object to ``findings.offending``."""
    stack: list[tuple[Any, str, int]] = [(config, "config", 0)]
    final_layers: list[dict[str, Any]] = []
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            findings.add_unscannable(f"{path}: config nests deeper than {MAX_DEPTH} levels")
            continue
        if isinstance(node, list):
            stack.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        _check_object(node, path, findings)
        layers = node.get("config", {}).get("layers") if isinstance(node.get("config"), dict) else None
        if isinstance(layers, list) and layers and isinstance(layers[-1], dict):
            final_layers.append(layers[-1])
        stack.extend((value, f"{path}.{key}", depth + 1) for key, value in node.items())
    if final_layers:
        last = final_layers[0]
        layer_config = last.get("config") if isinstance(last.get("config"), dict) else {}
        activation = layer_config.get("activation")
        if isinstance(activation, dict):
            activation = activation.get("config")
        findings.output_hints.append(f"keras|{last.get('class_name')}|{activation}")


def _check_object(node: dict[str, Any], path: str, findings: ArtifactFindings) -> None:
    class_name = node.get("class_name")
    if not isinstance(class_name, str):
        return
    name = node.get("config", {}).get("name") if isinstance(node.get("config"), dict) else None
    where = f"{path} ({class_name}{f' {name!r}' if name else ''})"
    if class_name in CODE_LAYERS:
        findings.add_offending(f"{where}: {CODE_LAYERS[class_name]}")
        return
    if class_name in _CODE_MARKERS:
        findings.add_offending(f"{where}: {_CODE_MARKERS[class_name]}")
        return
    module = node.get("module")
    if isinstance(module, str) and module and not _module_is_keras(module):
        registered = node.get("registered_name")
        findings.add_offending(
            f"{where}: refers to {module}.{registered or class_name}, outside Keras"
        )


def parse_keras_config(text: bytes | str, source: str, findings: ArtifactFindings) -> None:
    """Parse config JSON and walk it; a config that cannot be parsed is unscannable."""
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        findings.add_unscannable(f"{source} is not valid JSON: {exc}")
        return
    findings.globals_seen.setdefault("keras", None)
    walk_keras_config(config, findings)


def check_hdf5(path: Path, findings: ArtifactFindings) -> None:
    """Read the ``model_config`` attribute of an HDF5 file with h5py and walk it.

    Without h5py the file is unscannable: HDF5 has no other reader here.
    """
    try:
        import h5py
    except ImportError:
        findings.add_unscannable("h5py is not installed: install h5py to inspect HDF5 model files")
        return
    try:
        with h5py.File(path, "r") as handle:
            attributes = dict(handle.attrs)
    except (OSError, ValueError, RuntimeError) as exc:
        findings.add_invalid(f"h5py cannot open the file: {exc}")
        findings.add_unscannable("HDF5 file cannot be opened, so its model config is unknown")
        return
    config = attributes.get("model_config")
    if config is None:
        findings.notes.append("no model_config attribute: weights only")
        if "keras_version" in attributes or "layer_names" in attributes:
            findings.globals_seen.setdefault("keras", None)
        return
    if isinstance(config, bytes):
        config = config.decode("utf-8", errors="replace")
    parse_keras_config(str(config), "model_config attribute", findings)
