"""NumPy, joblib, safetensors, ONNX and Keras readers."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.artifacts.artifact_builders import SystemCall, build_zip, inspect_path


def test_numpy_array_passes(tmp_path: Path) -> None:
    path = tmp_path / "embeddings.npy"
    np.save(path, np.arange(12, dtype=np.float32).reshape(3, 4))
    result = inspect_path(path, tmp_path)
    assert result.format == "npy"
    assert result.framework == "numpy"
    assert result.checks["safety"].status == "pass"
    assert result.checks["validity"].status == "pass"


def test_npy_object_array_fails(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([1, SystemCall(marker)], dtype=object), allow_pickle=True)
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any("system" in detail for detail in safety.details)


def test_npz_object_member_fails(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "bundle.npz"
    np.savez(path, weights=np.ones(3), extra=np.array([SystemCall(marker)], dtype=object))
    result = inspect_path(path, tmp_path)
    assert result.format == "npz"
    assert result.checks["safety"].status == "fail"
    assert any("extra.npy" in detail for detail in result.checks["safety"].details)


def test_npz_benign_passes(tmp_path: Path) -> None:
    path = tmp_path / "bundle.npz"
    np.savez_compressed(path, weights=np.ones((4, 4)), bias=np.zeros(4, dtype=np.int64))
    result = inspect_path(path, tmp_path)
    assert result.checks["safety"].status == "pass"
    assert result.checks["validity"].status == "pass"


def test_npy_wrong_data_size_invalid(tmp_path: Path) -> None:
    path = tmp_path / "short.npy"
    np.save(path, np.ones(10))
    path.write_bytes(path.read_bytes()[:-8])
    validity = inspect_path(path, tmp_path).checks["validity"]
    assert validity.status == "fail"
    assert any("needs 80" in detail for detail in validity.details)


def test_npy_code_in_header_not_evaluated(tmp_path: Path, marker: Path) -> None:
    header = f"{{'descr': __import__('os').system('touch {marker}'), 'fortran_order': False, 'shape': (1,)}}".encode()
    path = tmp_path / "header.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    assert inspect_path(path, tmp_path).checks["validity"].status == "fail"


def sklearn_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.random.default_rng(0).random((20, 3))
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(features, np.arange(20) % 2)


def test_sklearn_pipeline_pickle_passes(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(pickle.dumps(sklearn_pipeline()))
    result = inspect_path(path, tmp_path)
    assert result.checks["safety"].status == "pass", result.checks["safety"].details
    assert result.framework == "sklearn"
    assert result.model_type == "classification"


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3)])
def test_sklearn_pipeline_joblib_passes(tmp_path: Path, compress: object) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "pipeline.joblib"
    joblib.dump(sklearn_pipeline(), path, compress=compress)
    result = inspect_path(path, tmp_path)
    assert result.format == "joblib"
    assert result.checks["safety"].status == "pass", result.checks["safety"].details
    assert result.model_type == "classification"


def test_sklearn_regressor_type(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestRegressor

    model = RandomForestRegressor(n_estimators=2, random_state=0).fit(np.random.rand(10, 2), np.random.rand(10))
    path = tmp_path / "forest.pkl"
    path.write_bytes(pickle.dumps(model))
    result = inspect_path(path, tmp_path)
    assert result.checks["safety"].status == "pass", result.checks["safety"].details
    assert result.model_type == "regression"


@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_with_malicious_object_fails(tmp_path: Path, marker: Path, compress: int) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "model.joblib"
    joblib.dump({"weights": np.ones(1000), "hook": SystemCall(marker), "tail": np.zeros(3)}, path, compress=compress)
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any("system" in detail for detail in safety.details)


def test_joblib_object_array_nested_pickle_fails(tmp_path: Path, marker: Path) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "objects.joblib"
    joblib.dump({"items": np.array([SystemCall(marker), 2], dtype=object), "after": np.ones(4)}, path)
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "fail"


# safetensors -------------------------------------------------------------------------


def safetensors_bytes(header: object, buffer: bytes, *, raw_header: bytes | None = None) -> bytes:
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + buffer


VALID_HEADER = {
    "__metadata__": {"format": "pt"},
    "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
    "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
}


def test_valid_safetensors_passes(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(safetensors_bytes(VALID_HEADER, b"\0" * 22))
    result = inspect_path(path, tmp_path)
    assert result.format == "safetensors"
    assert result.checks["safety"].status == "pass"
    assert result.checks["validity"].status == "pass", result.checks["validity"].details


def tensor(dtype: str, shape: list, offsets: list) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


MALFORMED_SAFETENSORS = {
    "header_too_large": (struct.pack("<Q", 100_000_001) + b"{}" + b"\0" * 16, "exceeds"),
    "header_past_end": (struct.pack("<Q", 5000) + b"{}" + b"\0" * 16, "past the end"),
    "not_utf8": (safetensors_bytes(None, b"", raw_header=b"{\xff\xfe}"), "UTF-8"),
    "not_object_start": (safetensors_bytes(None, b"", raw_header=b" [1, 2]"), "start with '{'"),
    "invalid_json": (safetensors_bytes(None, b"", raw_header=b"{not json}"), "not valid JSON"),
    "duplicate_keys": (
        safetensors_bytes(None, b"\0" * 8, raw_header=b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'),
        "duplicate key",
    ),
    "unknown_dtype": (safetensors_bytes({"a": tensor("F128", [1], [0, 16])}, b"\0" * 16), "unknown dtype"),
    "offsets_gap": (
        safetensors_bytes({"a": tensor("F32", [1], [0, 4]), "b": tensor("F32", [1], [8, 12])}, b"\0" * 12),
        "not contiguous",
    ),
    "offsets_not_from_zero": (safetensors_bytes({"a": tensor("F32", [1], [4, 8])}, b"\0" * 8), "not contiguous"),
    "buffer_not_covered": (safetensors_bytes({"a": tensor("F32", [1], [0, 4])}, b"\0" * 12), "data buffer holds 12"),
    "span_mismatch": (safetensors_bytes({"a": tensor("F32", [3], [0, 8])}, b"\0" * 8), "differs from shape"),
    "shape_overflow": (
        safetensors_bytes({"a": tensor("F64", [2**32, 2**32, 2], [0, 8])}, b"\0" * 8),
        "overflows",
    ),
    "negative_dim": (safetensors_bytes({"a": tensor("F32", [-1], [0, 4])}, b"\0" * 4), "non-negative"),
    "bad_offsets": (safetensors_bytes({"a": tensor("F32", [1], [0])}, b"\0" * 4), "two unsigned"),
    "metadata_not_strings": (
        safetensors_bytes({"__metadata__": {"epoch": 3}, "a": tensor("U8", [1], [0, 1])}, b"\0"),
        "__metadata__",
    ),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED_SAFETENSORS))
def test_malformed_safetensors_invalid(tmp_path: Path, kind: str) -> None:
    data, expected = MALFORMED_SAFETENSORS[kind]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    result = inspect_path(path, tmp_path)
    validity = result.checks["validity"]
    assert validity.status == "fail", (result.format, validity)
    assert any(expected in detail for detail in validity.details), validity.details


def test_safetensors_metadata_version(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    header = dict(VALID_HEADER, __metadata__={"format": "pt", "version": "2.1"})
    path.write_bytes(safetensors_bytes(header, b"\0" * 22))
    result = inspect_path(path, tmp_path)
    assert result.version == "2.1"
    assert result.checks["versioning"].status == "pass"


def test_safetensors_lm_head_is_generation(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    header = {"model.embed.weight": tensor("F32", [1], [0, 4]), "lm_head.weight": tensor("F32", [1], [4, 8])}
    path.write_bytes(safetensors_bytes(header, b"\0" * 8))
    assert inspect_path(path, tmp_path).model_type == "generation"


# ONNX --------------------------------------------------------------------------------


def onnx_model(output_name: str = "probabilities"):
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("W", TensorProto.FLOAT, [3, 2], [0.1] * 6)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["z"]), helper.make_node("Softmax", ["z"], [output_name])],
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", 2])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return onnx, model


def test_onnx_with_metadata_passes(tmp_path: Path) -> None:
    onnx, model = onnx_model()
    model.model_version = 7
    onnx.helper.set_model_props(model, {"author": "team"})
    path = tmp_path / "classifier.onnx"
    onnx.save(model, path)
    result = inspect_path(path, tmp_path)
    assert result.format == "onnx"
    assert result.checks["safety"].status == "pass"
    assert result.checks["validity"].status == "pass", result.checks["validity"].details
    assert "input x: float[batch, 3]" in result.checks["validity"].details
    assert "opset: ai.onnx 17" in result.checks["validity"].details
    assert result.version == "7"
    assert result.model_type == "classification"


def test_onnx_metadata_props_version(tmp_path: Path) -> None:
    onnx, model = onnx_model()
    onnx.helper.set_model_props(model, {"model_version": "2024.1"})
    path = tmp_path / "classifier.onnx"
    onnx.save(model, path)
    assert inspect_path(path, tmp_path).version == "2024.1"


def save_with_external_data(tmp_path: Path, location: str) -> Path:
    onnx, model = onnx_model()
    weight = model.graph.initializer[0]
    weight.ClearField("float_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    model_dir = tmp_path / "models"
    model_dir.mkdir(exist_ok=True)
    path = model_dir / "external.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "weights/../../secret.bin", "C:\\secret.bin"])
def test_onnx_external_data_escape_fails(tmp_path: Path, location: str) -> None:
    (tmp_path / "secret.bin").write_bytes(b"\0" * 24)
    path = save_with_external_data(tmp_path, location)
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any(location in detail for detail in safety.details)


def test_onnx_external_data_symlink_escape_fails(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "weights.bin").write_bytes(b"\0" * 24)
    path = save_with_external_data(tmp_path, "link/weights.bin")
    os.symlink(outside, path.parent / "link")
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any("outside the model's folder" in detail for detail in safety.details)


def test_onnx_external_data_inside_passes(tmp_path: Path) -> None:
    path = save_with_external_data(tmp_path, "weights.bin")
    (path.parent / "weights.bin").write_bytes(np.full(6, 0.1, dtype=np.float32).tobytes())
    result = inspect_path(path, tmp_path)
    assert result.checks["safety"].status == "pass"


def test_onnx_external_data_missing_invalid(tmp_path: Path) -> None:
    path = save_with_external_data(tmp_path, "missing.bin")
    validity = inspect_path(path, tmp_path).checks["validity"]
    assert validity.status == "fail"
    assert any("not found" in detail for detail in validity.details)


def test_onnx_checker_failure_invalid(tmp_path: Path) -> None:
    onnx, model = onnx_model()
    model.graph.node[0].input[1] = "undefined_tensor"
    path = tmp_path / "broken.onnx"
    path.write_bytes(model.SerializeToString())
    validity = inspect_path(path, tmp_path).checks["validity"]
    assert validity.status == "fail"
    assert any("onnx.checker" in detail for detail in validity.details)


# Keras -------------------------------------------------------------------------------


def keras_layer(class_name: str, config: dict, module: str = "keras.layers") -> dict:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def keras_file(tmp_path: Path, config: dict, name: str = "model.keras") -> Path:
    path = tmp_path / name
    path.write_bytes(
        build_zip([
            ("metadata.json", json.dumps({"keras_version": "3.4.1"}).encode()),
            ("config.json", json.dumps(config).encode()),
            ("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64),
        ])
    )
    return path


def sequential(*layers: dict) -> dict:
    return keras_layer("Sequential", {"name": "seq", "layers": list(layers)}, module="keras")


DENSE_SOFTMAX = keras_layer("Dense", {"name": "out", "units": 2, "activation": "softmax"})


def test_keras_benign_passes(tmp_path: Path) -> None:
    result = inspect_path(keras_file(tmp_path, sequential(DENSE_SOFTMAX)), tmp_path)
    assert result.format == "keras-zip"
    assert result.framework == "keras"
    assert result.checks["safety"].status == "pass", result.checks["safety"].details
    assert result.model_type == "classification"


def test_keras_lambda_fails(tmp_path: Path) -> None:
    lambda_layer = keras_layer(
        "Lambda",
        {"name": "sneaky", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAA"}}},
    )
    safety = inspect_path(keras_file(tmp_path, sequential(lambda_layer, DENSE_SOFTMAX)), tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any("Lambda" in detail and "sneaky" in detail for detail in safety.details)


def test_keras_nested_model_lambda_fails(tmp_path: Path) -> None:
    inner = sequential(keras_layer("Lambda", {"name": "deep", "function": "x"}))
    config = keras_layer("Functional", {"name": "outer", "layers": [inner, DENSE_SOFTMAX]}, module="keras")
    safety = inspect_path(keras_file(tmp_path, config), tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any("deep" in detail for detail in safety.details)


def test_keras_foreign_module_fails(tmp_path: Path) -> None:
    custom = keras_layer("Popen", {"name": "custom"}, module="subprocess")
    safety = inspect_path(keras_file(tmp_path, sequential(custom)), tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any("subprocess.Popen" in detail for detail in safety.details)


def test_keras_invalid_config_unscannable(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    path.write_bytes(build_zip([("metadata.json", b"{}"), ("config.json", b"{broken")]))
    assert inspect_path(path, tmp_path).checks["safety"].status == "unscannable"


def write_h5(path: Path, config: dict | None) -> None:
    h5py = pytest.importorskip("h5py", reason="h5py is not installed: HDF5 files cannot be read")
    with h5py.File(path, "w") as handle:
        if config is not None:
            handle.attrs["model_config"] = json.dumps(config)
        handle.attrs["keras_version"] = "2.15.0"
        handle.create_dataset("weights", data=np.ones(3))


def test_h5_lambda_fails(tmp_path: Path) -> None:
    path = tmp_path / "model.h5"
    write_h5(path, {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {"name": "l"}}]}})
    result = inspect_path(path, tmp_path)
    assert result.format == "hdf5"
    assert result.checks["safety"].status == "fail"


def test_h5_benign_passes(tmp_path: Path) -> None:
    path = tmp_path / "model.h5"
    write_h5(path, {"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"activation": "linear"}}]}})
    result = inspect_path(path, tmp_path)
    assert result.checks["safety"].status == "pass", result.checks["safety"].details
    assert result.framework == "keras"
    assert result.model_type == "regression"
