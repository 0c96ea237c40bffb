"""Model artifact checks as rules: one generated item per artifact and check.

The inspection itself lives in :mod:`pytest_aiml.artifacts`; these classes give each
of its checks a code, a priority and documentation, so that selection, waivers, the
baseline and the report treat artifact checks like every other rule.
"""

from __future__ import annotations

import json
import pickle
import struct

from pytest_aiml.artifacts.results import ArtifactInspection
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.rule import ArtifactRule, Category, Effort, Example, Priority

#: Details shown per finding before the rest is counted.
MAX_DETAILS = 20


def artifact_findings(rule: type[ArtifactRule], inspection: ArtifactInspection) -> list[Finding]:
    """Return one finding when the rule's check failed or could not scan the file, else none."""
    result = inspection.checks.get(rule.check)
    if result is None or not result.failed:
        return []
    message = result.summary
    if result.details:
        shown = "; ".join(result.details[:MAX_DETAILS])
        more = len(result.details) - MAX_DETAILS
        message = f"{message}: {shown}" + (f" (+{more} more)" if more > 0 else "")
    if result.status == "unscannable" and not message.lower().startswith("unscannable"):
        message = f"unscannable, which counts as a failure: {message}"
    return [Finding(code=rule.code, path=inspection.rel_path, message=message, snippet=result.summary)]


def _safetensors(header: dict, payload: bytes, *, length: int | None = None) -> bytes:
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded) if length is None else length) + encoded + payload


# Example files, built in memory. The pickles that name dangerous callables are inert
# bytes: the inspection reads them opcode by opcode and never loads them.
_WEIGHTS = _safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, struct.pack("<2f", 0.5, -1.0))
_VERSIONED_WEIGHTS = _safetensors(
    {"__metadata__": {"version": "2.1.0"}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
    struct.pack("<2f", 0.5, -1.0),
)
_OVERLONG_HEADER = _safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"", length=10_000)
_PLAIN_PICKLE = pickle.dumps({"coef": [0.4, -1.2], "intercept": 0.1}, protocol=4)
_SYSTEM_CALL_PICKLE = b"cos\nsystem\n(S'true'\ntR."
_EVAL_PICKLE = b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94\x8c\x011\x94\x85\x94R\x94."
_LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n"
)


class UnsafeArtifact(ArtifactRule):
    code = "AIML701"
    slug = "unsafe-model-artifact"
    check = "safety"
    category = Category.SECURITY
    priority = Priority.CRITICAL
    effort = Effort.MEDIUM
    message = "model artifact that can execute code when loaded, or that could not be scanned completely"
    impact = (
        "Loading a pickle-based model runs whatever callables it names; one tampered checkpoint "
        "in the repository or a model store is code execution on every machine that loads it."
    )
    fix = (
        "Re-export the model as safetensors or ONNX; if it must stay a pickle, remove the globals "
        "listed, or allow known-safe ones with allowed_globals under [tool.pytest-aiml.artifacts]."
    )
    VALID = (
        Example(path="models/encoder_v1.safetensors", files={"models/encoder_v1.safetensors": _WEIGHTS}),
        Example(path="models/linear_v1.pkl", files={"models/linear_v1.pkl": _PLAIN_PICKLE}),
    )
    INVALID = (
        Example(path="models/model_v1.pkl", files={"models/model_v1.pkl": _SYSTEM_CALL_PICKLE}),
        Example(path="models/model_v1.pt", files={"models/model_v1.pt": _EVAL_PICKLE}),
    )


class UnversionedModel(ArtifactRule):
    code = "AIML702"
    slug = "unversioned-model"
    check = "versioning"
    category = Category.MLOPS
    priority = Priority.CRITICAL
    effort = Effort.LOW
    anti_pattern = "No model versioning"
    message = "model artifact with no version in its name, metadata, sidecar, DVC or Git LFS tracking"
    impact = (
        "Without a version nobody can tell which model is deployed, reproduce a prediction, or roll "
        "back a bad release."
    )
    fix = (
        "Put a version in the file name (churn_v1.2.0.onnx) or the format metadata, track the file "
        "with DVC or Git LFS, or register it in a model registry and keep an MLmodel or model card beside it."
    )
    VALID = (
        Example(path="models/churn_v2.pkl", files={"models/churn_v2.pkl": _PLAIN_PICKLE}),
        Example(path="models/churn.safetensors", files={"models/churn.safetensors": _VERSIONED_WEIGHTS}),
        Example(
            path="models/churn.pt",
            files={"models/churn.pt": _LFS_POINTER, ".gitattributes": "*.pt filter=lfs diff=lfs merge=lfs -text\n"},
        ),
    )
    INVALID = (
        Example(path="models/churn.pkl", files={"models/churn.pkl": _PLAIN_PICKLE}),
        Example(path="models/encoder.safetensors", files={"models/encoder.safetensors": _WEIGHTS}),
    )


class InvalidArtifact(ArtifactRule):
    code = "AIML703"
    slug = "invalid-model-artifact"
    check = "validity"
    category = Category.SERVING
    priority = Priority.HIGH
    effort = Effort.LOW
    message = "model artifact that is malformed for its format"
    impact = "A truncated or malformed model fails at load time in production, or loads different tensors than trained."
    fix = "Export the model again from its source and check it loads with the format's reference loader."
    VALID = (Example(path="models/encoder_v1.safetensors", files={"models/encoder_v1.safetensors": _WEIGHTS}),)
    INVALID = (
        Example(path="models/encoder_v1.safetensors", files={"models/encoder_v1.safetensors": _OVERLONG_HEADER}),
    )


class UndocumentedModel(ArtifactRule):
    code = "AIML704"
    slug = "undocumented-model"
    check = "documentation"
    category = Category.MLOPS
    priority = Priority.MEDIUM
    effort = Effort.LOW
    anti_pattern = "No model documentation"
    message = "model artifact that no model card or documentation mentions"
    impact = "Users of an undocumented model do not know its training data, intended use, metrics or limits."
    fix = "Write a model card (MODEL_CARD.md or README.md beside the model) that names the file, its data, metrics and limits."
    VALID = (
        Example(
            path="models/encoder_v1.safetensors",
            files={
                "models/encoder_v1.safetensors": _WEIGHTS,
                "MODEL_CARD.md": "# Encoder\n\n`models/encoder_v1.safetensors` embeds support tickets.\n",
            },
        ),
    )
    INVALID = (Example(path="models/encoder_v1.safetensors", files={"models/encoder_v1.safetensors": _WEIGHTS}),)


RULES = (UnsafeArtifact, UnversionedModel, InvalidArtifact, UndocumentedModel)
