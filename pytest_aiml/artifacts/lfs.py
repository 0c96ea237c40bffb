"""Git LFS pointer files and ``.gitattributes`` rules that route paths through LFS."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1\n"
# Git LFS writes pointers well under this size (its spec caps them at 1024 bytes).
MAX_POINTER_BYTES = 1024
_OID_LINE = re.compile(r"^oid sha256:([0-9a-f]{64})$")
_SIZE_LINE = re.compile(r"^size (\d+)$")


@dataclass(frozen=True, slots=True)
class LfsPointer:
    """A parsed pointer: the object's SHA-256 and its size in bytes."""

    oid: str
    size: int


def parse_lfs_pointer(data: bytes) -> LfsPointer | None:
    """Parse pointer file content; None when it is not a valid pointer."""
    if len(data) > MAX_POINTER_BYTES or not data.startswith(LFS_POINTER_PREFIX):
        return None
    try:
        lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError:
        return None
    oid = size = None
    for line in lines[1:]:
        if match := _OID_LINE.match(line):
            oid = match.group(1)
        elif match := _SIZE_LINE.match(line):
            size = int(match.group(1))
    if oid is None or size is None:
        return None
    return LfsPointer(oid, size)


@dataclass(frozen=True, slots=True)
class LfsRule:
    """One ``.gitattributes`` line that sets (or unsets) ``filter=lfs``."""

    directory: str
    pattern: str
    enabled: bool

    def matches(self, rel_path: str) -> bool:
        """Match ``rel_path`` (POSIX, repository-relative) the way git matches attributes."""
        if self.directory:
            if not rel_path.startswith(self.directory + "/"):
                return False
            rel_path = rel_path[len(self.directory) + 1 :]
        pattern = self.pattern.lstrip("/")
        if "/" not in self.pattern.rstrip("/"):
            # A pattern without a slash matches the file name at any depth.
            return fnmatch.fnmatchcase(rel_path.rsplit("/", 1)[-1], pattern)
        if pattern.startswith("**/"):
            tail = pattern[3:]
            parts = rel_path.split("/")
            return any(fnmatch.fnmatchcase("/".join(parts[index:]), tail) for index in range(len(parts)))
        # NOTE: fnmatch lets "*" cross "/", which git does not; this can only over-match.
        return fnmatch.fnmatchcase(rel_path, pattern)


def parse_gitattributes(text: str, directory: str) -> list[LfsRule]:
    """Extract LFS rules from one ``.gitattributes`` file in ``directory`` (POSIX, "" for the root)."""
    rules: list[LfsRule] = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        pattern, *attributes = line.split()
        if "filter=lfs" in attributes:
            rules.append(LfsRule(directory, pattern, True))
        elif "-filter" in attributes or "!filter" in attributes or any(
            attribute.startswith("filter=") for attribute in attributes
        ):
            rules.append(LfsRule(directory, pattern, False))
    return rules


def lfs_tracked(rel_path: str, rules: list[LfsRule]) -> bool:
    """True when the last matching rule routes ``rel_path`` through LFS."""
    tracked = False
    for rule in rules:
        if rule.matches(rel_path):
            tracked = rule.enabled
    return tracked
