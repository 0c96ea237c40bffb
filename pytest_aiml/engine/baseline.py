"""Baselines: today's findings recorded, so that only new findings fail.

A finding's fingerprint is its rule, its path and its flagged code with whitespace
collapsed, never its line number, so unrelated edits above it do not make a recorded
finding look new. Identical fingerprints in one file are counted, not merged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_aiml.engine.findings import Finding

FORMAT_VERSION = 1


def fingerprint(code: str, path: str, snippet: str, message: str) -> str:
    """Return a stable fingerprint that survives line shifts and reformatting of whitespace."""
    normalized = re.sub(r"\s+", " ", snippet).strip() or message
    digest = hashlib.sha256(f"{code}\0{path}\0{normalized}".encode()).hexdigest()
    return digest[:16]


def finding_fingerprint(finding: Finding | Mapping[str, Any]) -> str:
    if isinstance(finding, Finding):
        return fingerprint(finding.code, finding.path, finding.snippet, finding.message)
    return fingerprint(finding["code"], finding["path"], finding.get("snippet", ""), finding["message"])


@dataclass(frozen=True)
class Baseline:
    """Recorded fingerprints with their counts, and a readable entry for each."""

    counts: Mapping[str, int] = field(default_factory=dict)
    entries: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def load(cls, path: Path) -> Baseline:
        """Read a baseline file; a missing file is an empty baseline.

        Raises ValueError naming the file when it is not a baseline written by pytest-aiml.
        """
        if not path.exists():
            return cls()
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"baseline {path} cannot be read: {error}; delete it and record it again with --aiml-baseline-update") from error
        if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION or not isinstance(document.get("findings"), list):
            raise ValueError(f"baseline {path} is not a pytest-aiml baseline of format {FORMAT_VERSION}; record it again with --aiml-baseline-update")
        counts: Counter[str] = Counter()
        for entry in document["findings"]:
            counts[entry["fingerprint"]] += 1
        return cls(counts=dict(counts), entries=tuple(document["findings"]))


def write_baseline(path: Path, findings: Iterable[Mapping[str, Any]]) -> int:
    """Write the findings as the new baseline, atomically; return how many were recorded."""
    entries = sorted(
        (
            {"fingerprint": finding_fingerprint(finding), "code": finding["code"], "path": finding["path"],
             "message": finding["message"]}
            for finding in findings
        ),
        key=lambda entry: (entry["path"], entry["code"], entry["fingerprint"], entry["message"]),
    )
    document = {"version": FORMAT_VERSION, "findings": entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=1, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return len(entries)
