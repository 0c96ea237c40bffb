"""PyTorch checkpoint layouts: the zip format, TorchScript archives and the legacy format.

``torch.save`` (since torch 1.6) writes a zip whose ``<archive>/data.pkl`` is the
pickled object and ``<archive>/data/<key>`` the raw storages. TorchScript archives
add ``code/`` and ``constants.pkl``. The legacy format
(``_use_new_zipfile_serialization=False``) is five stacked pickles (magic number,
protocol version, system info, the object, the storage keys) followed by raw
storage bytes, which ``torch.load`` reads without unpickling.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import BinaryIO

from pytest_aiml.artifacts.byte_stream import FileSlice
from pytest_aiml.artifacts.findings import ArtifactFindings, ReadOptions, record_pickle_scan
from pytest_aiml.artifacts.joblib_files import joblib_array_payload
from pytest_aiml.artifacts.pickle_scan import scan_pickle_sequence

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PICKLE_COUNT = 5
_STORAGE_MEMBER = re.compile(r"^(?:[^/]+/)?data/\d+$")


def is_torch_zip(member_names: Sequence[str]) -> bool:
    """True when a zip has the ``<archive>/data.pkl`` record that ``torch.load`` reads."""
    return any(name == "data.pkl" or (name.endswith("/data.pkl") and name.count("/") == 1) for name in member_names)


def is_torchscript(member_names: Sequence[str]) -> bool:
    """True for ``torch.jit.save`` archives, which ``torch.load`` hands to ``torch.jit.load``."""
    has_constants = any(name.endswith("constants.pkl") for name in member_names)
    has_code = any("/code/" in name or name.startswith("code/") for name in member_names)
    return has_constants and has_code


def is_storage_member(name: str) -> bool:
    """True for raw tensor storages, which torch reads as bytes and never unpickles."""
    return bool(_STORAGE_MEMBER.match(name))


def scan_legacy_torch(file: BinaryIO, size: int, findings: ArtifactFindings, options: ReadOptions) -> None:
    """Walk the five pickles of a legacy torch file, and speculatively what follows them."""
    scans = scan_pickle_sequence(
        FileSlice(file, 0, size, size),
        max_opcodes=options.max_opcodes,
        array_payload=joblib_array_payload,
        primary_count=LEGACY_PICKLE_COUNT,
    )
    for index, scan in enumerate(scans):
        record_pickle_scan(
            findings,
            scan,
            member=None,
            allowlist=options.allowlist,
            required=index < LEGACY_PICKLE_COUNT,
        )
    if len(scans) < LEGACY_PICKLE_COUNT and all(scan.complete for scan in scans):
        findings.add_unscannable(
            f"legacy torch file ends after {len(scans)} of its {LEGACY_PICKLE_COUNT} pickles"
        )
    if scans and scans[0].result != LEGACY_MAGIC_NUMBER:
        findings.add_invalid("first pickle is not the legacy torch magic number")
