"""The accumulator that format readers fill while they read one artifact."""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_aiml.artifacts.allowlist import GlobalAllowlist
from pytest_aiml.artifacts.pickle_scan import PickleStreamScan

MAX_DETAILS = 200


@dataclass(slots=True)
class ArtifactFindings:
    """What the readers found, before it is turned into check results.

    ``offending``: safety failures (disallowed globals with their location, Lambda
    layers, external data outside the model folder). ``unscannable``: parts that
    could not be read completely. ``invalid``: format errors for the validity
    check. ``globals_seen`` and ``strings`` feed framework and model type inference.
    ``metadata`` contains format metadata (ONNX ``metadata_props``, safetensors
    ``__metadata__``) for versioning.
    """

    offending: list[str] = field(default_factory=list)
    unscannable: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    globals_seen: dict[str, None] = field(default_factory=dict)
    strings: dict[str, None] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    member_names: list[str] = field(default_factory=list)
    output_hints: list[str] = field(default_factory=list)
    pickle_streams: int = 0

    def add_offending(self, detail: str) -> None:
        if len(self.offending) < MAX_DETAILS:
            self.offending.append(detail)

    def add_unscannable(self, detail: str) -> None:
        if len(self.unscannable) < MAX_DETAILS:
            self.unscannable.append(detail)

    def add_invalid(self, detail: str) -> None:
        if len(self.invalid) < MAX_DETAILS:
            self.invalid.append(detail)


def location_text(member: str | None, offset: int) -> str:
    """Name a byte position: ``byte 57 of member 'archive/data.pkl'`` or ``byte 57``."""
    if member is None:
        return f"byte {offset}"
    return f"byte {offset} of member {member!r}"


def record_pickle_scan(
    findings: ArtifactFindings,
    scan: PickleStreamScan,
    *,
    member: str | None,
    allowlist: GlobalAllowlist,
    required: bool,
    torchscript: bool = False,
) -> None:
    """Judge one walked stream against the allowlist and add the outcome to ``findings``.

    ``required`` streams are ones a loader certainly unpickles, so an incomplete walk
    makes the artifact unscannable. Other streams (speculative ones) only contribute
    the globals they reached before the data stopped parsing.
    """
    if required or scan.complete:
        findings.pickle_streams += 1
    seen_in_stream: set[tuple[str, int]] = set()
    for imported in scan.globals:
        findings.globals_seen.setdefault(imported.qualified_name, None)
        verdict = allowlist.check(imported.module, imported.name, torchscript=torchscript)
        key = (imported.qualified_name, imported.offset)
        if verdict.allowed or key in seen_in_stream:
            continue
        seen_in_stream.add(key)
        findings.add_offending(
            f"global {imported.qualified_name} ({imported.opcode}) at "
            f"{location_text(member, imported.offset)}: {verdict.reason}"
        )
    for unresolved in scan.unresolved:
        findings.add_offending(
            f"unresolved import ({unresolved.opcode}) at "
            f"{location_text(member, unresolved.offset)}: {unresolved.reason}"
        )
    for text in scan.strings:
        if len(findings.strings) >= 5000:
            break
        findings.strings.setdefault(text, None)
    if required and not scan.complete:
        where = f"member {member!r}" if member else "pickle stream"
        findings.add_unscannable(f"{where} could not be read completely: {scan.error}")


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """Allowlist and limits that every format reader needs besides the file."""

    allowlist: GlobalAllowlist
    max_opcodes: int
    max_output_bytes: int
    max_zip_members: int
    max_config_bytes: int
