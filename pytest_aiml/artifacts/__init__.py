"""Model artifact inspection: format sniffing, pickle scanning, format validation, versioning.

Importing this package is cheap: it imports no torch, onnx, numpy or h5py. Those are
imported only by the readers of the formats that need them.
"""

from pytest_aiml.artifacts.extensions import MODEL_EXTENSIONS, has_model_extension

__all__ = ["MODEL_EXTENSIONS", "has_model_extension"]
