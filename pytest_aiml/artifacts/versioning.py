"""Find the version of a model artifact, from the first source that has one.

Sources, in the order they are tried:

1. a Git LFS pointer (the object id is the version);
2. the file name or a parent folder: ``v3``, ``_v1.2.0``, ``version-2``, ``1.4.0``,
   a date stamp ``20240115`` / ``2024-01-15`` / ``2024_01_15``;
3. format metadata: ONNX ``model_version`` (when non-zero) and ``metadata_props``,
   safetensors ``__metadata__``, with a key such as ``version``, ``model_version`` or
   ``revision``;
4. a sidecar beside the file: an MLflow ``MLmodel`` (its ``run_id`` or
   ``model_uuid``), or a model card or metadata YAML/JSON that states a version;
5. tracking: a DVC output covering the file (its md5), a ``.gitattributes`` rule
   routing it through Git LFS, or Python code that registers it in the MLflow model
   registry and names the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pytest_aiml.artifacts.lfs import LfsPointer
from pytest_aiml.artifacts.repository_context import RepositoryContext, read_text, yaml_document

_BOUNDARY_START = r"(?:^|(?<=[_\-.\s]))"
_BOUNDARY_END = r"(?=$|[_\-.\s])"
_NAME_PATTERNS = (
    re.compile(_BOUNDARY_START + r"v(\d+(?:[._]\d+){0,3})" + _BOUNDARY_END, re.IGNORECASE),
    re.compile(_BOUNDARY_START + r"(?:version|ver|rev)[_\-]?(\d+(?:[._]\d+){0,3})" + _BOUNDARY_END, re.IGNORECASE),
    re.compile(_BOUNDARY_START + r"(\d+\.\d+\.\d+)" + _BOUNDARY_END),
    re.compile(
        _BOUNDARY_START + r"((?:19|20)\d{2}[-_]?(?:0[1-9]|1[0-2])[-_]?(?:0[1-9]|[12]\d|3[01]))(?=$|[_\-.\sT])"
    ),
)
VERSION_KEYS = ("version", "model_version", "revision", "model_revision", "git_sha", "commit")
_TEXT_VERSION = re.compile(r"^\s*[-*]?\s*\**(?:model[ _-]?)?version\**\s*[:=]\s*\**\s*([\w.+\-]+)", re.IGNORECASE | re.MULTILINE)
MODEL_CARD_NAMES = ("README.md", "README.rst", "MODEL_CARD.md", "model_card.md", "modelcard.md", "MODELCARD.md")


@dataclass(frozen=True, slots=True)
class VersionEvidence:
    """A version and where it was found; both None when the artifact is unversioned."""

    version: str | None
    source: str | None


def version_from_name(rel_path: str) -> str | None:
    """Find a version or date stamp in the file name, else in the nearest parent folder."""
    posix = PurePosixPath(rel_path)
    candidates = [posix.name.rsplit(".", 1)[0] if "." in posix.name else posix.name]
    candidates += [part for part in reversed(posix.parent.parts)]
    for text in candidates:
        for pattern in _NAME_PATTERNS:
            match = pattern.search(text)
            if match:
                return match.group(1)
    return None


def version_from_metadata(metadata: dict[str, str]) -> str | None:
    """Return the value of the first version-like key of format metadata."""
    lowered = {key.lower(): value for key, value in metadata.items()}
    for key in VERSION_KEYS:
        value = lowered.get(key)
        if value and str(value).strip():
            return str(value).strip()
    return None


def _structured_version(text: str, where: str) -> str | None:
    try:
        document = json.loads(text)
    except ValueError:
        document = yaml_document(text, where)
    if not isinstance(document, dict):
        return None
    return version_from_metadata({str(key): str(value) for key, value in document.items() if value is not None})


def _sidecar_names(artifact_name: str) -> list[str]:
    stem = artifact_name.split(".", 1)[0]
    names = [f"{artifact_name}.{ext}" for ext in ("json", "yaml", "yml")]
    names += [f"{stem}.{ext}" for ext in ("json", "yaml", "yml")]
    names += [f"{base}.{ext}" for base in ("metadata", "model_metadata", "model_info", "meta") for ext in ("json", "yaml", "yml")]
    return names


def version_from_sidecar(rel_path: str, root: Path, context: RepositoryContext) -> VersionEvidence | None:
    """Look for an MLmodel, a model card or a metadata file beside the artifact."""
    posix = PurePosixPath(rel_path)
    folder = "" if str(posix.parent) == "." else f"{posix.parent}/"
    mlmodel = f"{folder}MLmodel"
    if mlmodel in context.files:
        document = yaml_document(read_text(root / mlmodel) or "", mlmodel)
        if isinstance(document, dict):
            identifier = document.get("model_uuid") or document.get("run_id")
            if identifier:
                return VersionEvidence(f"mlflow:{identifier}", f"MLflow MLmodel {mlmodel}")
    for name in _sidecar_names(posix.name):
        candidate = f"{folder}{name}"
        if candidate in context.files and candidate != rel_path:
            version = _structured_version(read_text(root / candidate) or "", candidate)
            if version:
                return VersionEvidence(version, f"metadata file {candidate}")
    for name in MODEL_CARD_NAMES + (f"{posix.name.split('.', 1)[0]}.md",):
        candidate = f"{folder}{name}"
        if candidate in context.files:
            match = _TEXT_VERSION.search(read_text(root / candidate) or "")
            if match:
                return VersionEvidence(match.group(1), f"model card {candidate}")
    return None


def version_from_tracking(rel_path: str, context: RepositoryContext) -> VersionEvidence | None:
    """Return DVC, Git LFS or MLflow registry tracking of the artifact."""
    dvc = context.dvc_entry(rel_path)
    if dvc is not None:
        output, digest = dvc
        return VersionEvidence(f"dvc:{digest[:12]}" if digest else "dvc", f"DVC output {output}")
    if context.lfs_tracked(rel_path):
        return VersionEvidence("git-lfs", "Git LFS rule in .gitattributes")
    name = PurePosixPath(rel_path).name.lower()
    for code_path, text in context.registry_code:
        if name in text:
            return VersionEvidence("mlflow-registry", f"MLflow model registry use in {code_path}")
    return None


def find_version(
    rel_path: str,
    root: Path,
    context: RepositoryContext,
    *,
    metadata: dict[str, str],
    onnx_model_version: int | None = None,
    lfs_pointer: LfsPointer | None = None,
) -> VersionEvidence:
    """Return the first version evidence found, in the order of the module docstring."""
    if lfs_pointer is not None:
        return VersionEvidence(f"lfs:sha256:{lfs_pointer.oid[:12]}", "Git LFS pointer")
    name_version = version_from_name(rel_path)
    if name_version:
        return VersionEvidence(name_version, "file name")
    if onnx_model_version:
        return VersionEvidence(str(onnx_model_version), "ONNX model_version")
    metadata_version = version_from_metadata(metadata)
    if metadata_version:
        return VersionEvidence(metadata_version, "format metadata")
    return version_from_sidecar(rel_path, root, context) or version_from_tracking(rel_path, context) or VersionEvidence(None, None)
