"""Builders of inert malicious payloads for the artifact tests.

Each payload, if it were ever executed, would only create the marker file it is
given under the test's tmp_path. The ``marker`` fixture checks that it never appears.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

class SystemCall:
    """Pickles as os.system('touch MARKER'), which runs a shell command on load."""

    def __init__(self, marker: Path) -> None:
        self.command = f"touch {marker}"

    def __reduce__(self):
        return (os.system, (self.command,))


class ExecCall:
    """Pickles as builtins.exec(code) that would create the marker."""

    def __init__(self, marker: Path) -> None:
        self.code = f"open({str(marker)!r}, 'w').close()"

    def __reduce__(self):
        return (exec, (self.code,))


def global_call_pickle(module: str, name: str, args: tuple[str, ...], protocol: int = 2) -> bytes:
    """Hand-assemble a pickle that imports module.name and calls it with string arguments."""
    if protocol >= 4:
        head = b"\x80" + bytes([protocol])
        head += b"\x8c" + bytes([len(module)]) + module.encode() + b"\x94"
        head += b"\x8c" + bytes([len(name)]) + name.encode() + b"\x94\x93"
    else:
        head = (b"\x80" + bytes([protocol]) if protocol >= 2 else b"") + b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    body = b"("
    for arg in args:
        encoded = arg.encode()
        body += b"X" + struct.pack("<I", len(encoded)) + encoded
    return head + body + b"tR."


def pickle_bytes(obj: object, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


def repo_files(root: Path) -> list[str]:
    """List every file under root as POSIX paths relative to it, sorted."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def inspect_path(path: Path, root: Path, **kwargs):
    """Inspect one artifact of the repository rooted at root."""
    from pytest_aiml.artifacts.inspect import inspect_artifact

    return inspect_artifact(path, path.relative_to(root).as_posix(), root=root, repo_files=repo_files(root), **kwargs)


def build_zip(entries: list[tuple[str, bytes]], *, compress: bool = False) -> bytes:
    """Build a zip in memory with zipfile, in the given member order."""
    import io
    import zipfile

    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()
