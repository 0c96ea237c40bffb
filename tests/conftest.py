"""Shared test setup.

pytester's in-process runs restore ``sys.modules`` after each run, so a module first
imported inside a run is imported again by the next one. That is slow for heavy
modules, and wrong for pytest-aiml's own: a class imported again is a new class, and
``isinstance`` checks against the old one fail. So every package module is imported
here, once, before any run.
"""

import importlib
import pkgutil
from collections.abc import Iterator

import hypothesis  # noqa: F401  (the hypothesis pytest plugin imports it at every session end)
import libcst  # noqa: F401

import pytest
import yaml

import pytest_aiml
from tests.report_validation import assert_valid_report

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


@pytest.fixture(autouse=True)
def _reports_match_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    """Validate every pytest-aiml report a pytester run wrote, whatever the test itself checks."""
    if "pytester" not in request.fixturenames:
        yield
        return
    pytester = request.getfixturevalue("pytester")
    yield
    for path in sorted(pytester.path.rglob("*.yaml")):
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(document, dict) and "aiml_analysis" in document:
            assert_valid_report(document)
