"""Result types of artifact inspection, and their builtin-only wire form for pytest-xdist."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

STATUS_PASS = "pass"
STATUS_FAIL = "fail"
STATUS_SKIP = "skip"
# The file could not be read completely. It counts as a failure, never as a pass.
STATUS_UNSCANNABLE = "unscannable"
STATUSES = (STATUS_PASS, STATUS_FAIL, STATUS_SKIP, STATUS_UNSCANNABLE)
FAILING_STATUSES = frozenset({STATUS_FAIL, STATUS_UNSCANNABLE})

CHECK_SAFETY = "safety"
CHECK_VERSIONING = "versioning"
CHECK_VALIDITY = "validity"
CHECK_DOCUMENTATION = "documentation"
CHECK_NAMES = (CHECK_SAFETY, CHECK_VERSIONING, CHECK_VALIDITY, CHECK_DOCUMENTATION)

MODEL_TYPES = ("classification", "regression", "generation", "embedding")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one check on one artifact.

    ``summary`` is one sentence for the item's failure line; ``details`` lists each
    offending global with where it sits, each malformed header field, and so on.
    """

    status: str
    summary: str
    details: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"invalid check status {self.status!r}: expected one of {STATUSES}")

    @property
    def failed(self) -> bool:
        return self.status in FAILING_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "summary": self.summary, "details": list(self.details)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(str(data["status"]), str(data["summary"]), tuple(data.get("details", ())))


@dataclass(frozen=True, slots=True)
class ArtifactInspection:
    """Everything learned about one artifact: identity, inventory fields and check results.

    ``rel_path`` is POSIX and relative to the repository root. ``format`` is a name
    from ``pytest_aiml.artifacts.sniff.FORMATS``. ``framework`` and ``model_type`` are
    None when they cannot be inferred. ``checks`` maps every name in ``CHECK_NAMES``
    to its result.
    """

    rel_path: str
    format: str
    framework: str | None
    model_type: str | None
    size_bytes: int
    size_text: str
    version: str | None
    checks: Mapping[str, CheckResult]

    def __post_init__(self) -> None:
        # A read-only view keeps the frozen dataclass immutable all the way down.
        object.__setattr__(self, "checks", MappingProxyType(dict(self.checks)))

    def __hash__(self) -> int:
        return hash((self.rel_path, self.format, self.size_bytes, self.version))

    @property
    def name(self) -> str:
        """File name without folders, as the report's inventory shows it."""
        return self.rel_path.rsplit("/", 1)[-1]

    @property
    def failed_checks(self) -> tuple[str, ...]:
        return tuple(name for name in CHECK_NAMES if name in self.checks and self.checks[name].failed)

    def to_dict(self) -> dict[str, Any]:
        """Return builtins only (str, int, None, list, dict), for xdist and the report."""
        return {
            "rel_path": self.rel_path,
            "format": self.format,
            "framework": self.framework,
            "model_type": self.model_type,
            "size_bytes": self.size_bytes,
            "size_text": self.size_text,
            "version": self.version,
            "checks": {name: result.to_dict() for name, result in self.checks.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactInspection:
        return cls(
            rel_path=str(data["rel_path"]),
            format=str(data["format"]),
            framework=data.get("framework"),
            model_type=data.get("model_type"),
            size_bytes=int(data["size_bytes"]),
            size_text=str(data["size_text"]),
            version=data.get("version"),
            checks={name: CheckResult.from_dict(result) for name, result in data["checks"].items()},
        )


def format_size(size_bytes: int) -> str:
    """Format a byte count for the report: ``"450MB"``, ``"12.3KB"``, ``"512B"``.

    Units are powers of 1024, written without the "i" as the report schema's
    examples do; one decimal is kept below 100 of a unit.
    """
    value = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            if unit == "B":
                return f"{int(value)}B"
            text = f"{value:.1f}" if value < 100 else f"{value:.0f}"
            return f"{text.removesuffix('.0')}{unit}"
        value /= 1024
    raise AssertionError("unreachable")
