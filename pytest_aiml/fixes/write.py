"""Writing a fixed file back: atomically, in its own encoding, and never over a newer version.

The fix step works on UTF-8 text decoded from the file's bytes without translating
newlines, so ``\\r\\n`` files keep their line endings. libcst drops a byte order
mark, so it is set aside when reading and written back. Files in another encoding
are not fixed (:func:`decode_source` returns None).
"""

from __future__ import annotations

import codecs
import difflib
import enum
import os
import stat
import tempfile
from pathlib import Path


class WriteStatus(str, enum.Enum):
    WRITTEN = "written"
    #: The file's bytes changed after the fix step read them: an editor or another tool wrote it.
    CHANGED_ON_DISK = "changed on disk"
    FAILED = "failed"


def decode_source(content: bytes) -> str | None:
    """Return the text of a UTF-8 source file without its byte order mark, or None for any other encoding."""
    try:
        return content.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError:
        return None


def write_fixed(path: Path, original: bytes, fixed_text: str) -> tuple[WriteStatus, str]:
    """Replace ``path`` with ``fixed_text`` when it still contains exactly ``original``.

    The new content goes to a temporary file in the same folder, with the old file's
    permission bits, and is renamed over it, so a reader sees the old file or the new
    one, never a torn one. A symbolic link is followed and its target replaced. The
    bytes are compared again just before the rename; a change made in between is not
    detected. Returns the status and, for a failure, the reason.
    """
    target = path.resolve()
    try:
        current = target.read_bytes()
    except OSError as error:
        return WriteStatus.FAILED, f"cannot read it again: {error}"
    if current != original:
        return WriteStatus.CHANGED_ON_DISK, "it changed on disk after it was read; run the fix again"
    temporary = None
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".aiml-fix", dir=target.parent)
        with os.fdopen(handle, "wb") as stream:
            if original.startswith(codecs.BOM_UTF8):
                stream.write(codecs.BOM_UTF8)
            stream.write(fixed_text.encode("utf-8"))
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except OSError as error:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        return WriteStatus.FAILED, str(error)
    return WriteStatus.WRITTEN, ""


def unified_diff(path: str, original: str, fixed: str) -> str:
    """Return the change as a unified diff with ``a/`` and ``b/`` prefixes, as ``git diff`` shows it."""
    lines = difflib.unified_diff(
        original.splitlines(keepends=True), fixed.splitlines(keepends=True), fromfile=f"a/{path}", tofile=f"b/{path}"
    )
    text = []
    for line in lines:
        text.append(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n")
    return "".join(text)
