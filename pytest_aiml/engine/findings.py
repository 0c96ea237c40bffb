"""Findings: what a rule reports, as plain frozen data."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One place in the repository where a rule matched.

    ``line`` and ``column`` are 1-based; both are 0 for a finding that belongs to a
    whole file or to the repository. ``path`` is POSIX and relative to the rootdir.
    """

    code: str
    path: str
    line: int = 0
    column: int = 0
    message: str
    snippet: str = ""
    #: First line of the innermost statement around the finding (the first decorator of a
    #: decorated definition); inline waivers may sit there. 0 when unknown.
    statement_line: int = 0

    def location(self) -> str:
        """Return ``path:line:col`` (or just the path for a file-level finding)."""
        if self.line:
            return f"{self.path}:{self.line}:{self.column}"
        return self.path

    def render(self) -> str:
        """Return the one-line form that failures and logs show."""
        return f"{self.location()} {self.code} {self.message}"

    def serialized(self) -> dict[str, Any]:
        """Return builtins only, so the finding can travel on an xdist report."""
        return asdict(self)

    @classmethod
    def from_serialized(cls, data: dict[str, Any]) -> Finding:
        return cls(**data)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParseFailure:
    """A file the engine could not parse; it yields no findings of its own rules."""

    path: str
    line: int
    column: int
    reason: str

    def render(self) -> str:
        return f"{self.path}:{self.line}:{self.column} could not be parsed: {self.reason}"

    def serialized(self) -> dict[str, Any]:
        return asdict(self)
