"""Inspect one model artifact: sniff it, read it safely, and judge the four checks.

Checks and what their statuses mean:

- ``safety``: pass when nothing in the file can run code on load, which means every
  pickle global is allowlisted, no Keras Lambda exists, and ONNX external data stays
  inside the model's folder. Fail lists the offenders. Unscannable means a part
  could not be read completely or the format has no scanner. Skip is for LFS
  pointers and non-models.
- ``validity``: pass when the file is well-formed for its format, with the ONNX
  signature and any tolerated oddities in the details. Fail lists the malformed
  fields. Skip means there is no validator or the bytes are absent.
- ``versioning``: pass with the version source, fail as "No model versioning".
- ``documentation``: pass with the model card or the document that names the file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pytest_aiml.artifacts import sniff
from pytest_aiml.artifacts.allowlist import build_allowlist
from pytest_aiml.artifacts.documentation import find_documentation
from pytest_aiml.artifacts.findings import ArtifactFindings, ReadOptions
from pytest_aiml.artifacts.lfs import MAX_POINTER_BYTES, LfsPointer, parse_lfs_pointer
from pytest_aiml.artifacts.model_info import infer_framework, infer_model_type
from pytest_aiml.artifacts.readers import UNSUPPORTED_FORMATS, read_artifact
from pytest_aiml.artifacts.repository_context import RepositoryContext, build_repository_context
from pytest_aiml.artifacts.results import (
    CHECK_DOCUMENTATION,
    CHECK_SAFETY,
    CHECK_VALIDITY,
    CHECK_VERSIONING,
    STATUS_FAIL,
    STATUS_PASS,
    STATUS_SKIP,
    STATUS_UNSCANNABLE,
    ArtifactInspection,
    CheckResult,
    format_size,
)
from pytest_aiml.artifacts.settings import ArtifactSettings
from pytest_aiml.artifacts.versioning import VersionEvidence, find_version

logger = logging.getLogger("pytest_aiml.artifacts")

LFS_SKIP_REASON = "Git LFS pointer: fetch the object first"
NOT_A_MODEL_REASON = "not a model file: its content matches no model format"
# Formats whose bytes cannot carry code that runs on load, whatever their content.
_CODE_FREE_FORMATS = {
    sniff.SAFETENSORS: "safetensors holds only a JSON header and tensor bytes; nothing runs on load",
}


def inspect_artifact(
    path: Path,
    rel_path: str,
    *,
    root: Path,
    repo_files: Sequence[str],
    settings: ArtifactSettings | None = None,
    context: RepositoryContext | None = None,
) -> ArtifactInspection:
    """Inspect the artifact at ``path`` (``rel_path``: POSIX, relative to ``root``).

    ``repo_files`` lists the repository's files as POSIX paths relative to ``root``;
    pass a prebuilt ``context`` to share it between artifacts. Never executes the
    artifact, and imports onnx or h5py only for ONNX and HDF5 files. Raises
    ``ValueError`` for invalid ``settings.extra_allowed_globals``.
    """
    settings = settings or ArtifactSettings()
    context = context or build_repository_context(root, repo_files)
    try:
        size = path.stat().st_size
        format_name = sniff.sniff_format(path)
    except OSError as exc:
        logger.warning("cannot read artifact %s: %s", rel_path, exc)
        return _unreadable(rel_path, exc)

    findings = ArtifactFindings()
    if format_name == sniff.NOT_A_MODEL:
        skip = CheckResult(STATUS_SKIP, NOT_A_MODEL_REASON)
        checks = {name: skip for name in (CHECK_SAFETY, CHECK_VALIDITY, CHECK_VERSIONING, CHECK_DOCUMENTATION)}
        return _inspection(rel_path, format_name, findings, size, VersionEvidence(None, None), checks)

    pointer = _lfs_pointer(path) if format_name == sniff.LFS_POINTER else None
    onnx_top_level = None
    if pointer is not None:
        safety = validity = CheckResult(STATUS_SKIP, LFS_SKIP_REASON)
    elif size > settings.max_read_bytes:
        reason = f"not read: {format_size(size)} exceeds max_read_bytes ({format_size(settings.max_read_bytes)})"
        safety = CheckResult(STATUS_UNSCANNABLE, reason, ("raise max_read_mb under [tool.pytest-aiml.artifacts], or waive the item after review",))
        validity = CheckResult(STATUS_SKIP, reason)
    else:
        options = ReadOptions(
            allowlist=build_allowlist(settings.extra_allowed_globals, allow_sklearn_classes=settings.allow_sklearn_classes),
            max_opcodes=settings.max_pickle_opcodes,
            max_output_bytes=settings.max_read_bytes,
            max_zip_members=settings.max_zip_members,
            max_config_bytes=settings.max_config_bytes,
        )
        onnx_top_level = read_artifact(path, format_name, size, findings, options, run_onnx_checker=settings.run_onnx_checker)
        safety = safety_result(format_name, findings)
        validity = validity_result(format_name, findings)

    evidence = find_version(
        rel_path,
        root,
        context,
        metadata=findings.metadata,
        onnx_model_version=onnx_top_level.model_version if onnx_top_level else None,
        lfs_pointer=pointer,
    )
    checks = {
        CHECK_SAFETY: safety,
        CHECK_VERSIONING: versioning_result(evidence),
        CHECK_VALIDITY: validity,
        CHECK_DOCUMENTATION: documentation_result(rel_path, context),
    }
    return _inspection(rel_path, format_name, findings, size, evidence, checks)


def _lfs_pointer(path: Path) -> LfsPointer | None:
    with path.open("rb") as file:
        return parse_lfs_pointer(file.read(MAX_POINTER_BYTES + 1))


def _inspection(
    rel_path: str,
    format_name: str,
    findings: ArtifactFindings,
    size: int,
    evidence: VersionEvidence,
    checks: dict[str, CheckResult],
) -> ArtifactInspection:
    return ArtifactInspection(
        rel_path=rel_path,
        format=format_name,
        framework=infer_framework(format_name, findings),
        model_type=infer_model_type(format_name, findings),
        size_bytes=size,
        size_text=format_size(size),
        version=evidence.version,
        checks=checks,
    )


def _unreadable(rel_path: str, error: OSError) -> ArtifactInspection:
    unscannable = CheckResult(STATUS_UNSCANNABLE, f"the file cannot be read: {error}")
    return ArtifactInspection(
        rel_path=rel_path,
        format=sniff.NOT_A_MODEL,
        framework=None,
        model_type=None,
        size_bytes=0,
        size_text=format_size(0),
        version=None,
        checks={
            CHECK_SAFETY: unscannable,
            CHECK_VALIDITY: unscannable,
            CHECK_VERSIONING: CheckResult(STATUS_SKIP, "the file cannot be read"),
            CHECK_DOCUMENTATION: CheckResult(STATUS_SKIP, "the file cannot be read"),
        },
    )


def safety_result(format_name: str, findings: ArtifactFindings) -> CheckResult:
    """Judge safety from the findings: unscannable wins over fail, which wins over pass."""
    if format_name in UNSUPPORTED_FORMATS:
        return CheckResult(
            STATUS_UNSCANNABLE,
            f"no safety scanner for format {format_name!r}: {UNSUPPORTED_FORMATS[format_name]}",
            ("review the file and waive the item, or convert the model to safetensors or ONNX",),
        )
    if findings.unscannable:
        return CheckResult(
            STATUS_UNSCANNABLE,
            "the file cannot be read completely, so it cannot be shown safe to load",
            tuple(findings.unscannable + findings.offending),
        )
    if findings.offending:
        count = len(findings.offending)
        return CheckResult(
            STATUS_FAIL,
            f"unsafe to load: {count} finding{'s' if count != 1 else ''} that can run code or read outside the model",
            tuple(findings.offending),
        )
    if format_name in _CODE_FREE_FORMATS:
        return CheckResult(STATUS_PASS, _CODE_FREE_FORMATS[format_name])
    return CheckResult(
        STATUS_PASS,
        f"safe to load: {findings.pickle_streams} pickle stream(s) import only allowlisted globals"
        if findings.pickle_streams
        else "safe to load: no pickled or code-bearing content found",
    )


def validity_result(format_name: str, findings: ArtifactFindings) -> CheckResult:
    """Judge format validity: malformed fields fail, unreadable parts are unscannable."""
    notes = tuple(findings.notes)
    if findings.invalid:
        return CheckResult(STATUS_FAIL, f"invalid {format_name} file", tuple(findings.invalid) + notes)
    if format_name in UNSUPPORTED_FORMATS:
        return CheckResult(STATUS_SKIP, f"no validator for format {format_name!r}")
    if findings.unscannable:
        return CheckResult(STATUS_UNSCANNABLE, "the file cannot be read completely", tuple(findings.unscannable))
    return CheckResult(STATUS_PASS, f"valid {format_name} file", notes)


def versioning_result(evidence: VersionEvidence) -> CheckResult:
    if evidence.source is not None:
        return CheckResult(STATUS_PASS, f"versioned by {evidence.source}: {evidence.version}")
    return CheckResult(
        STATUS_FAIL,
        "No model versioning: no version in the file name, format metadata or a sidecar, and no DVC, Git LFS or registry tracking",
    )


def documentation_result(rel_path: str, context: RepositoryContext) -> CheckResult:
    evidence = find_documentation(rel_path, context)
    if evidence.source is not None:
        return CheckResult(STATUS_PASS, f"documented: {evidence.source}")
    return CheckResult(
        STATUS_FAIL,
        "undocumented: no model card beside the file and no document names it",
    )
