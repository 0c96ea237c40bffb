"""Forward-only byte streams over files, file slices and decompressors.

Every artifact reader takes one of these instead of ``bytes`` so that a multi-gigabyte
checkpoint is read in bounded chunks: large payloads (tensor storages, ``BINBYTES``
arguments, array data) are skipped with ``skip`` and never held in memory.
"""

from __future__ import annotations

import zlib
from typing import BinaryIO, Protocol

CHUNK_SIZE = 1 << 20


class StreamLimitError(Exception):
    """Raised when a decompressing stream would produce more bytes than allowed."""


class ByteStream(Protocol):
    """A forward-only reader with an offset counted from the start of the stream."""

    def read(self, size: int) -> bytes:
        """Read up to ``size`` bytes; fewer only at the end of the stream."""
        ...

    def skip(self, size: int) -> int:
        """Advance by up to ``size`` bytes and return how many were skipped."""
        ...

    def tell(self) -> int:
        """Return the offset of the next byte, counted from the start of the stream."""
        ...


class BytesStream:
    """A stream over bytes already in memory (headers, small members, tests)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def read(self, size: int) -> bytes:
        chunk = self._data[self._position : self._position + max(size, 0)]
        self._position += len(chunk)
        return chunk

    def skip(self, size: int) -> int:
        skipped = max(0, min(size, len(self._data) - self._position))
        self._position += skipped
        return skipped

    def tell(self) -> int:
        return self._position


class FileSlice:
    """A stream over ``length`` bytes of a seekable file, starting at ``start``.

    ``skip`` only moves the position, so skipping a 1 GB tensor costs nothing. The
    slice is clipped to the file's real size, so a declared length that runs past the
    end of a truncated file shows up as a short read.
    """

    def __init__(self, file: BinaryIO, start: int, length: int, file_size: int) -> None:
        self._file = file
        self._start = start
        self._end = min(start + max(length, 0), file_size)
        self._position = start

    def read(self, size: int) -> bytes:
        size = max(0, min(size, self._end - self._position))
        if size == 0:
            return b""
        self._file.seek(self._position)
        chunk = self._file.read(size)
        self._position += len(chunk)
        return chunk

    def skip(self, size: int) -> int:
        skipped = max(0, min(size, self._end - self._position))
        self._position += skipped
        return skipped

    def tell(self) -> int:
        return self._position - self._start


class InflateStream:
    """A stream of the decompressed bytes of a raw DEFLATE (zip method 8) slice.

    Output is bounded by ``max_output_bytes`` so that a decompression bomb ends in
    ``StreamLimitError`` instead of filling memory or running for hours.
    """

    def __init__(self, compressed: ByteStream, max_output_bytes: int) -> None:
        self._compressed = compressed
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._buffer = b""
        self._position = 0
        self._max_output_bytes = max_output_bytes
        self.finished = False

    def _fill(self, wanted: int) -> None:
        while len(self._buffer) < wanted and not self.finished:
            # Output is capped per call, so leftover input must be fed back before
            # the next compressed chunk or the output would come out of order.
            pending = self._inflater.unconsumed_tail
            if not pending:
                pending = self._compressed.read(CHUNK_SIZE)
                if not pending:
                    self._buffer += self._inflater.flush()
                    self.finished = True
                    break
            # zlib.error propagates: the caller reports the member as unreadable.
            self._buffer += self._inflater.decompress(pending, CHUNK_SIZE)
            if self._inflater.eof:
                self.finished = True
            if self._position + len(self._buffer) > self._max_output_bytes:
                raise StreamLimitError(
                    f"decompressed data exceeds {self._max_output_bytes} bytes"
                )

    @property
    def stream_complete(self) -> bool:
        """True when the DEFLATE stream reached its end marker."""
        return self._inflater.eof

    def read(self, size: int) -> bytes:
        self._fill(size)
        chunk, self._buffer = self._buffer[:size], self._buffer[size:]
        self._position += len(chunk)
        return chunk

    def skip(self, size: int) -> int:
        skipped = 0
        while skipped < size:
            chunk = self.read(min(CHUNK_SIZE, size - skipped))
            if not chunk:
                break
            skipped += len(chunk)
        return skipped

    def tell(self) -> int:
        return self._position


class FileObjectStream:
    """A stream over a readable file object such as ``gzip.GzipFile`` or ``lzma.LZMAFile``.

    ``skip`` reads and discards, because decompressors cannot seek cheaply; total
    output is bounded by ``max_output_bytes`` for the same reason as ``InflateStream``.
    """

    def __init__(self, file: BinaryIO, max_output_bytes: int) -> None:
        self._file = file
        self._position = 0
        self._max_output_bytes = max_output_bytes

    def read(self, size: int) -> bytes:
        chunk = self._file.read(max(size, 0))
        self._position += len(chunk)
        if self._position > self._max_output_bytes:
            raise StreamLimitError(f"decompressed data exceeds {self._max_output_bytes} bytes")
        return chunk

    def skip(self, size: int) -> int:
        skipped = 0
        while skipped < size:
            chunk = self.read(min(CHUNK_SIZE, size - skipped))
            if not chunk:
                break
            skipped += len(chunk)
        return skipped

    def tell(self) -> int:
        return self._position


class PeekableStream:
    """A buffered wrapper that adds ``readline`` and ``peek`` to any ``ByteStream``."""

    def __init__(self, source: ByteStream) -> None:
        self._source = source
        self._buffer = b""
        self._offset = source.tell()

    def tell(self) -> int:
        return self._offset

    def peek(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = self._source.read(max(size - len(self._buffer), 4096))
            if not chunk:
                break
            self._buffer += chunk
        return self._buffer[:size]

    def read(self, size: int) -> bytes:
        if size <= len(self._buffer):
            chunk, self._buffer = self._buffer[:size], self._buffer[size:]
        else:
            chunk = self._buffer + self._source.read(size - len(self._buffer))
            self._buffer = b""
        self._offset += len(chunk)
        return chunk

    def skip(self, size: int) -> int:
        from_buffer = min(size, len(self._buffer))
        self._buffer = self._buffer[from_buffer:]
        skipped = from_buffer + self._source.skip(size - from_buffer)
        self._offset += skipped
        return skipped

    def readline(self, max_length: int) -> bytes | None:
        """Read through the next ``\\n``; ``None`` when none comes within ``max_length`` bytes."""
        searched = 0
        while True:
            newline = self._buffer.find(b"\n", searched)
            if newline >= 0:
                return self.read(newline + 1)
            searched = len(self._buffer)
            if searched >= max_length:
                return None
            chunk = self._source.read(4096)
            if not chunk:
                return None
            self._buffer += chunk
