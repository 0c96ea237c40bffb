"""Waivers: a rule code (or family prefix) that does not apply somewhere, with a reason.

Three sources feed one model: the ``waivers`` array of ``[tool.pytest-aiml]``, inline
comments in the scanned code, and the ``aiml_waive`` marker. Matching is the same
for all of them; only where the waiver sits differs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_aiml.engine.discovery import glob_matches
from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.engine.findings import Finding

#: ``# aiml: waive[AIML101, AIML2] reason`` or ``# aiml: waive-file[AIML101] reason``,
#: optionally ending in ``expires=YYYY-MM-DD``.
INLINE_WAIVER = re.compile(
    r"#\s*aiml:\s*waive(?P<file>-file)?\[(?P<codes>[^\]]*)\](?P<reason>[^#\n]*)", re.IGNORECASE
)
_EXPIRES = re.compile(r"\s*;?\s*expires\s*=\s*(\S+)\s*$", re.IGNORECASE)
#: How far from the top of a file a ``waive-file`` comment may sit (licence headers included).
FILE_WAIVER_MAX_LINE = 50
_CONFIG_KEYS = {"rules", "paths", "reason", "expires"}


@dataclass(frozen=True, slots=True)
class Waiver:
    """One waiver, from whatever source.

    ``origin`` names where it was written (``pyproject.toml waivers[1]``,
    ``src/serve.py:12``, ``marker on tests/...``) and doubles as its identity.
    """

    rules: tuple[str, ...]
    reason: str
    source: str
    origin: str
    paths: tuple[str, ...] = ()
    expires: dt.date | None = None
    #: For inline waivers: the file and line of the comment, and whether it covers the whole file.
    file: str = ""
    line: int = 0
    whole_file: bool = False
    #: For inline waivers: the comment is alone on its line, so it covers the line below too.
    own_line: bool = False

    def covers_code(self, code: str) -> bool:
        return any(code.startswith(rule) for rule in self.rules)

    def covers_path(self, path: str) -> bool:
        return not self.paths or any(glob_matches(path, pattern) for pattern in self.paths)

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today

    def describe(self) -> str:
        expiry = f", expires {self.expires.isoformat()}" if self.expires else ""
        return f"{self.origin} ({self.source}{expiry}): {self.reason}"

    def serialized(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "source": self.source,
            "rules": list(self.rules),
            "paths": list(self.paths),
            "reason": self.reason,
            "expires": self.expires.isoformat() if self.expires else None,
        }


def parse_date(value: object, where: str) -> dt.date | None:
    """Accept a TOML date or an ISO ``YYYY-MM-DD`` string."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(where, f"invalid expiry date {value!r}", "write it as a date such as 2027-03-31")


def config_waivers(entries: object, is_known_code: Callable[[str], bool]) -> list[Waiver]:
    """Parse the ``waivers`` array of tables; errors name the entry and key."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ConfigError("waivers", "must be an array of tables", "write each waiver as [[tool.pytest-aiml.waivers]]")
    waivers = []
    for index, entry in enumerate(entries, start=1):
        where = f"waivers[{index}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(where, f"must be a table, not {entry!r}", "write it as [[tool.pytest-aiml.waivers]]")
        unknown = sorted(set(entry) - _CONFIG_KEYS)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", "unknown key", f"a waiver has the keys {', '.join(sorted(_CONFIG_KEYS))}")
        rules = _string_list(entry.get("rules"), f"{where}.rules")
        if not rules:
            raise ConfigError(f"{where}.rules", "is missing or empty", 'name the rule codes, e.g. rules = ["AIML101"]')
        rules = [rule.strip().upper() for rule in rules]
        for rule in rules:
            if not is_known_code(rule):
                raise ConfigError(f"{where}.rules", f"unknown rule code {rule!r}", "use a code or prefix from docs/rules/index.md")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{where}.reason", "is missing", "say why the rule does not apply, in a sentence")
        paths = _string_list(entry.get("paths"), f"{where}.paths")
        waivers.append(
            Waiver(
                rules=tuple(rules), reason=reason.strip(), source="config", origin=f"pyproject.toml {where}",
                paths=tuple(paths), expires=parse_date(entry.get("expires"), f"{where}.expires"),
            )
        )
    return waivers


def _string_list(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(where, f"must be a list of strings, not {value!r}", 'write it as ["..."]')
    return value


class InlineWaiverError(ValueError):
    """An inline waiver comment that cannot be used as written."""


def inline_waivers(path: str, text: str, is_known_code: Callable[[str], bool]) -> list[Waiver]:
    """Find the ``# aiml: waive[...]`` comments of a source file.

    Raises InlineWaiverError naming ``path:line`` for an unknown code, a missing
    reason or a bad expiry date.
    """
    if "aiml:" not in text:
        return []
    waivers = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = INLINE_WAIVER.search(line)
        if match is None:
            continue
        where = f"{path}:{number}"
        codes = [code.strip().upper() for code in match.group("codes").split(",") if code.strip()]
        if not codes:
            raise InlineWaiverError(f"{where}: inline waiver names no rule code; write # aiml: waive[AIML101] reason")
        for code in codes:
            if not is_known_code(code):
                raise InlineWaiverError(f"{where}: inline waiver names unknown rule code {code!r}")
        reason = match.group("reason").strip()
        expires = None
        expiry = _EXPIRES.search(reason)
        if expiry:
            reason = reason[: expiry.start()].strip()
            try:
                expires = dt.date.fromisoformat(expiry.group(1))
            except ValueError:
                raise InlineWaiverError(f"{where}: invalid expiry date {expiry.group(1)!r}; write expires=2027-03-31") from None
        if not reason:
            raise InlineWaiverError(f"{where}: inline waiver for {', '.join(codes)} has no reason; write the reason after the ]")
        whole_file = bool(match.group("file"))
        if whole_file and number > FILE_WAIVER_MAX_LINE:
            raise InlineWaiverError(
                f"{where}: waive-file must be within the first {FILE_WAIVER_MAX_LINE} lines of the file"
            )
        waivers.append(
            Waiver(rules=tuple(codes), reason=reason, source="inline", origin=where, expires=expires,
                   file=path, line=number, whole_file=whole_file, own_line=line.lstrip().startswith("#"))
        )
    return waivers


def inline_match(finding: Finding, waiver: Waiver) -> bool:
    """Tell whether an inline waiver sits where it covers ``finding``.

    It may be on the flagged line, on a comment line just above it, on the first line
    of the enclosing statement (multi-line calls, decorators, comprehensions) or on a
    comment line just above that. A ``waive-file`` waiver covers the whole file. Either
    covers findings in its own file only, because a repository rule's item has findings
    in many files. A finding on a whole file (line 0) is covered by ``waive-file`` alone.
    """
    if not waiver.covers_code(finding.code) or (waiver.file and waiver.file != finding.path):
        return False
    if waiver.whole_file:
        return True
    anchors = [anchor for anchor in (finding.line, finding.statement_line) if anchor]
    return any(waiver.line == anchor or (waiver.own_line and waiver.line == anchor - 1) for anchor in anchors)


def unique(waivers: Iterable[Waiver]) -> list[Waiver]:
    seen: dict[str, Waiver] = {}
    for waiver in waivers:
        seen.setdefault(waiver.origin, waiver)
    return [seen[key] for key in sorted(seen)]


def marker_waiver(args: Sequence[Any], kwargs: Mapping[str, Any], where: str, is_known_code: Callable[[str], bool]) -> Waiver:
    """Build a waiver from ``pytest.mark.aiml_waive("AIML101", reason=..., expires=...)``."""
    unknown = sorted(set(kwargs) - {"reason", "expires", "paths"})
    if unknown:
        raise ConfigError(where, f"aiml_waive got unknown argument {unknown[0]!r}", "use reason=, expires= and paths=")
    codes = [str(code).strip().upper() for code in args]
    if not codes:
        raise ConfigError(where, "aiml_waive names no rule code", 'write pytest.mark.aiml_waive("AIML101", reason="...")')
    for code in codes:
        if not is_known_code(code):
            raise ConfigError(where, f"aiml_waive names unknown rule code {code!r}", "use a code from docs/rules/index.md")
    reason = kwargs.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ConfigError(where, "aiml_waive has no reason", 'add reason="why the rule does not apply"')
    return Waiver(
        rules=tuple(codes), reason=reason.strip(), source="marker", origin=f"marker on {where}",
        paths=tuple(_string_list(kwargs.get("paths"), where)), expires=parse_date(kwargs.get("expires"), where),
    )
