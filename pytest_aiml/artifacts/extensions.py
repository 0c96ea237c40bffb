"""File name suffixes that name model artifacts.

The list is a hint for discovery, not a verdict: ``sniff_format`` decides by content,
and a file with one of these suffixes that contains something else is reported as
"not-a-model". Generic suffixes (``.bin``, ``.model``, ``.pb``) are included because
checkpoints commonly use them.
"""

from __future__ import annotations

MODEL_EXTENSIONS: frozenset[str] = frozenset(
    {
        # PyTorch: torch.save zips, legacy pickles, TorchScript, torch.export, Lightning
        ".pt", ".pth", ".pt2", ".ptl", ".ckpt", ".bin", ".torchscript",
        # pickle-based (scikit-learn, joblib, xgboost and LightGBM sklearn wrappers)
        ".pkl", ".pickle", ".joblib", ".sav", ".dill",
        # tensor containers
        ".safetensors", ".npy", ".npz", ".gguf", ".ggml",
        # graph formats
        ".onnx", ".pb", ".tflite", ".mlmodel",
        # Keras and HDF5
        ".h5", ".hdf5", ".keras",
        # packaged models and archives that hold them
        ".model", ".mar", ".7z",
        # XGBoost's UBJSON and Flax's msgpack checkpoints
        ".ubj", ".msgpack",
    }
)
# Double suffixes of old PyTorch checkpoints, which hold a torch zip or pickle, not a tar.
MODEL_DOUBLE_EXTENSIONS: frozenset[str] = frozenset({".pth.tar", ".pt.tar", ".ckpt.tar"})


def has_model_extension(name: str) -> bool:
    """True when a file name ends with a model suffix (case-insensitive)."""
    lowered = name.lower()
    dot = lowered.rfind(".")
    if dot < 0:
        return False
    if lowered[dot:] in MODEL_EXTENSIONS:
        return True
    return any(lowered.endswith(suffix) for suffix in MODEL_DOUBLE_EXTENSIONS)
