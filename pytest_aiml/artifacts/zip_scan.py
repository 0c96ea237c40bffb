"""Scan every member of a zip artifact: torch checkpoints, ``.npz``, ``.keras`` and plain zips.

Every member is examined whatever its name, because a loader or a later
``pickle.load`` may read any of them. ``.pkl`` members and NumPy object arrays are
required pickle streams. Every other member is walked speculatively, so a pickle
hidden under a harmless name still shows its globals.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import BinaryIO

from pytest_aiml.artifacts.byte_stream import ByteStream, PeekableStream, StreamLimitError
from pytest_aiml.artifacts.findings import ArtifactFindings, ReadOptions, record_pickle_scan
from pytest_aiml.artifacts.joblib_files import joblib_array_payload
from pytest_aiml.artifacts.numpy_files import NPY_MAGIC, scan_npy
from pytest_aiml.artifacts.pickle_scan import scan_pickle_stream
from pytest_aiml.artifacts.torch_files import is_storage_member, is_torchscript
from pytest_aiml.artifacts.zipread import ZipMember, ZipReadError, open_member, read_zip_members

# Archives inside an archive are not unpacked; a member that is one is unscannable.
_ARCHIVE_SIGNATURES = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
)
# Two- and three-byte signatures also occur by chance in tensor data, so they are only
# trusted in members that are not raw storages.
_COMPRESSED_SIGNATURES = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
)

# Reads a member's text (config.json of a .keras file); receives the member and its bytes.
MemberTextHandler = Callable[[ZipMember, bytes], None]


def list_members(file: BinaryIO, size: int, options: ReadOptions) -> tuple[ZipMember, ...]:
    """List the members, raising ``ZipReadError`` when the directory cannot be read."""
    return read_zip_members(file, size, max_members=options.max_zip_members)


def _nested_archive_kind(head: bytes, member: ZipMember) -> str | None:
    for signature, kind in _ARCHIVE_SIGNATURES:
        if head.startswith(signature):
            return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if not is_storage_member(member.name):
        for signature, kind in _COMPRESSED_SIGNATURES:
            if head.startswith(signature):
                return kind
    return None


def scan_zip_members(
    file: BinaryIO,
    size: int,
    members: tuple[ZipMember, ...],
    findings: ArtifactFindings,
    options: ReadOptions,
    *,
    text_members: dict[str, MemberTextHandler] | None = None,
) -> None:
    """Scan every member; ``text_members`` maps member names to handlers of their text."""
    names = [member.name for member in members]
    torchscript = is_torchscript(names)
    findings.member_names.extend(names)
    seen_offsets: set[int] = set()
    for member in members:
        if member.is_directory and member.uncompressed_size == 0:
            continue
        if member.header_offset in seen_offsets:
            findings.notes.append(f"member {member.name!r} shares its data with another entry")
        seen_offsets.add(member.header_offset)
        try:
            _scan_member(file, size, member, findings, options, torchscript, text_members or {})
        except ZipReadError as exc:
            findings.add_unscannable(str(exc))
        except (zlib.error, StreamLimitError, OSError) as exc:
            findings.add_unscannable(f"member {member.name!r} cannot be decompressed: {exc}")


def _scan_member(
    file: BinaryIO,
    size: int,
    member: ZipMember,
    findings: ArtifactFindings,
    options: ReadOptions,
    torchscript: bool,
    text_members: dict[str, MemberTextHandler],
) -> None:
    stream, notes = open_member(file, size, member, max_output_bytes=options.max_output_bytes)
    for note in notes:
        findings.notes.append(f"member {member.name!r}: {note}")
    peekable = PeekableStream(stream)
    head = peekable.peek(512)
    nested = _nested_archive_kind(head, member)
    if nested is not None:
        findings.add_unscannable(f"member {member.name!r} is a nested {nested} archive, which is not unpacked")
        return
    if member.name in text_members:
        text_members[member.name](member, _read_limited(peekable, member, options.max_config_bytes))
        return
    if head.startswith(NPY_MAGIC):
        scan_npy(
            peekable,
            findings,
            member=member.name,
            allowlist=options.allowlist,
            max_opcodes=options.max_opcodes,
            data_size=member.uncompressed_size,
        )
        return
    required = member.name.endswith((".pkl", ".pickle", ".debug_pkl"))
    scan = scan_pickle_stream(
        peekable,
        speculative=not required,
        max_opcodes=options.max_opcodes,
        array_payload=joblib_array_payload,
    )
    if not required and not scan.globals and not scan.unresolved:
        # Data that does not import anything is not a pickle worth reporting.
        return
    record_pickle_scan(
        findings,
        scan,
        member=member.name,
        allowlist=options.allowlist,
        required=required,
        torchscript=torchscript,
    )


def _read_limited(stream: ByteStream, member: ZipMember, limit: int) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ZipReadError(f"member {member.name!r} is larger than the {limit}-byte limit for configs")
    return data
