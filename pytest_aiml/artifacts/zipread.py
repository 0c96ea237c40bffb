"""A tolerant zip reader for scanning, which reads at least what torch and NumPy load.

``zipfile`` rejects archives that torch (miniz) loads without complaint: a local
header whose name differs from the central directory's, a wrong CRC, odd flag bits.
A scanner built on ``zipfile`` that skips such a member reads less than the loader
and is bypassed. This reader takes the member list from the central directory (as
miniz and ``zipfile`` do), finds the data through the local header, ignores CRCs,
and records each oddity instead of giving up. What it truly cannot read (encryption,
unknown compression, data past the end of the file) raises ``ZipReadError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from pytest_aiml.artifacts.byte_stream import ByteStream, FileSlice, InflateStream

_LOCAL_SIGNATURE = b"PK\x03\x04"
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_END_SIGNATURE = b"PK\x06\x06"
_END_RECORD_SIZE = 22
_MAX_COMMENT = 0xFFFF
_ZIP64_EXTRA_ID = 0x0001

METHOD_STORED = 0
METHOD_DEFLATED = 8
_FLAG_ENCRYPTED = 0x0001
_FLAG_STRONG_ENCRYPTION = 0x0040


class ZipReadError(Exception):
    """The archive or one member cannot be read completely."""


@dataclass(frozen=True, slots=True)
class ZipMember:
    """One central directory entry and where its data sits.

    ``name`` comes from the central directory, which is what loaders look up.
    """

    name: str
    method: int
    flags: int
    compressed_size: int
    uncompressed_size: int
    header_offset: int

    @property
    def is_directory(self) -> bool:
        return self.name.endswith("/")

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION))


def _find_end_record(file: BinaryIO, file_size: int) -> tuple[int, bytes]:
    tail_size = min(file_size, _END_RECORD_SIZE + _MAX_COMMENT)
    file.seek(file_size - tail_size)
    tail = file.read(tail_size)
    position = tail.rfind(_END_SIGNATURE)
    while position >= 0:
        record = tail[position : position + _END_RECORD_SIZE]
        if len(record) == _END_RECORD_SIZE:
            return file_size - tail_size + position, record
        position = tail.rfind(_END_SIGNATURE, 0, position)
    raise ZipReadError("end of central directory not found: the archive is truncated or not a zip")


def _read_zip64_end(file: BinaryIO, end_offset: int) -> tuple[int, int]:
    """Return (entry count, central directory offset) from the ZIP64 end record."""
    if end_offset < 20:
        raise ZipReadError("ZIP64 end of central directory locator missing")
    file.seek(end_offset - 20)
    locator = file.read(20)
    if locator[:4] != _ZIP64_LOCATOR_SIGNATURE:
        raise ZipReadError("ZIP64 end of central directory locator missing")
    (record_offset,) = struct.unpack("<Q", locator[8:16])
    file.seek(record_offset)
    record = file.read(56)
    if len(record) < 56 or record[:4] != _ZIP64_END_SIGNATURE:
        raise ZipReadError(f"ZIP64 end of central directory record not found at byte {record_offset}")
    entries, _size, directory_offset = struct.unpack("<QQQ", record[32:56])
    return entries, directory_offset


def _apply_zip64_extra(
    extra: bytes, sizes: list[int]
) -> None:
    """Replace 0xFFFFFFFF fields of [uncompressed, compressed, offset] from the ZIP64 extra field."""
    position = 0
    while position + 4 <= len(extra):
        header_id, length = struct.unpack("<HH", extra[position : position + 4])
        body = extra[position + 4 : position + 4 + length]
        if header_id == _ZIP64_EXTRA_ID:
            cursor = 0
            for index, value in enumerate(sizes):
                if value == 0xFFFFFFFF and cursor + 8 <= len(body):
                    (sizes[index],) = struct.unpack("<Q", body[cursor : cursor + 8])
                    cursor += 8
            return
        position += 4 + length


def read_zip_members(file: BinaryIO, file_size: int, *, max_members: int) -> tuple[ZipMember, ...]:
    """List every entry of the central directory, in directory order, duplicates included."""
    end_offset, end_record = _find_end_record(file, file_size)
    entries = struct.unpack("<H", end_record[10:12])[0]
    directory_offset = struct.unpack("<I", end_record[16:20])[0]
    if entries == 0xFFFF or directory_offset == 0xFFFFFFFF:
        entries, directory_offset = _read_zip64_end(file, end_offset)
    if entries > max_members:
        raise ZipReadError(f"{entries} members is more than the limit of {max_members}")
    if directory_offset > file_size:
        raise ZipReadError(f"central directory offset {directory_offset} is past the end of the file")
    file.seek(directory_offset)
    members: list[ZipMember] = []
    for index in range(entries):
        header = file.read(46)
        if len(header) < 46 or header[:4] != _CENTRAL_SIGNATURE:
            raise ZipReadError(f"central directory entry {index} is missing or corrupt")
        flags, method = struct.unpack("<HH", header[8:12])
        compressed, uncompressed = struct.unpack("<II", header[20:28])
        name_length, extra_length, comment_length = struct.unpack("<HHH", header[28:34])
        (local_offset,) = struct.unpack("<I", header[42:46])
        raw_name = file.read(name_length)
        extra = file.read(extra_length)
        file.read(comment_length)
        sizes = [uncompressed, compressed, local_offset]
        _apply_zip64_extra(extra, sizes)
        members.append(
            ZipMember(
                name=_decode_name(raw_name, flags),
                method=method,
                flags=flags,
                compressed_size=sizes[1],
                uncompressed_size=sizes[0],
                header_offset=sizes[2],
            )
        )
    return tuple(members)


def _decode_name(raw: bytes, flags: int) -> str:
    if flags & 0x0800:
        return raw.decode("utf-8", errors="replace")
    return raw.decode("cp437")


def open_member(
    file: BinaryIO, file_size: int, member: ZipMember, *, max_output_bytes: int
) -> tuple[ByteStream, tuple[str, ...]]:
    """Open a member's uncompressed bytes as a stream, with notes on tolerated oddities.

    Raises ``ZipReadError`` for encrypted members, compression methods other than
    stored and deflate, and data that runs past the end of the file.
    """
    if member.encrypted:
        raise ZipReadError(f"member {member.name!r} is encrypted")
    if member.method not in (METHOD_STORED, METHOD_DEFLATED):
        raise ZipReadError(f"member {member.name!r} uses unsupported compression method {member.method}")
    if member.header_offset + 30 > file_size:
        raise ZipReadError(f"local header of member {member.name!r} is past the end of the file")
    file.seek(member.header_offset)
    local = file.read(30)
    if local[:4] != _LOCAL_SIGNATURE:
        raise ZipReadError(f"local header of member {member.name!r} not found at byte {member.header_offset}")
    local_flags, local_method = struct.unpack("<HH", local[6:10])
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    local_name = _decode_name(file.read(name_length), local_flags)
    notes: list[str] = []
    if local_name != member.name:
        notes.append(f"local header names it {local_name!r}")
    if local_method != member.method:
        # Loaders disagree on which header wins, so neither reading can be trusted.
        raise ZipReadError(
            f"member {member.name!r}: compression method {local_method} in the local header "
            f"differs from {member.method} in the central directory"
        )
    if local_flags & _FLAG_ENCRYPTED:
        raise ZipReadError(f"member {member.name!r} is encrypted (local header)")
    data_offset = member.header_offset + 30 + name_length + extra_length
    if data_offset + member.compressed_size > file_size:
        raise ZipReadError(
            f"member {member.name!r} is truncated: its data ends at byte "
            f"{data_offset + member.compressed_size}, past the end of the file at {file_size}"
        )
    if member.method == METHOD_STORED:
        # A loader may trust either size field, so read the larger span.
        if member.compressed_size != member.uncompressed_size:
            notes.append(
                f"sizes differ: {member.compressed_size} stored, {member.uncompressed_size} declared"
            )
        length = max(member.compressed_size, member.uncompressed_size)
        return FileSlice(file, data_offset, length, file_size), tuple(notes)
    raw = FileSlice(file, data_offset, member.compressed_size, file_size)
    return InflateStream(raw, max_output_bytes), tuple(notes)
