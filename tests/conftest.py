"""Shared test setup.

pytester's in-process runs restore ``sys.modules`` after each run, so a module first
imported inside a run is imported again by the next one. That is slow for heavy
modules, and wrong for pytest-aiml's own: a class imported again is a new class, and
``isinstance`` checks against the old one fail. So every package module is imported
here, once, before any run.
"""

import importlib
import pkgutil

import hypothesis  # noqa: F401  (the hypothesis pytest plugin imports it at every session end)
import libcst  # noqa: F401

import pytest_aiml

# torch._dynamo registers C++ operator libraries when imported; imported a second time
# after a pytester run dropped it from sys.modules, it fails, so it is imported here once.
_OPTIONAL = ("torch", "torch._dynamo", "torch.onnx", "onnx", "onnxscript", "onnxruntime", "h5py", "fastapi", "pandas")

for _module in pkgutil.walk_packages(pytest_aiml.__path__, "pytest_aiml."):
    if _module.name != "pytest_aiml.__main__":
        importlib.import_module(_module.name)
for _name in _OPTIONAL:
    try:
        importlib.import_module(_name)
    except ImportError:
        pass
