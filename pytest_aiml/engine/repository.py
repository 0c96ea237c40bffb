"""The repository rules: run together once per run on the inventory, and cached by what they read.

Their results depend on the repository's listing, on the files they and the inventory
read, and on the code of the rules. The cache keeps the last run's results with the
log of those reads, and a run reuses them while every read still finds the same
bytes, so a warm run neither builds the inventory nor checks a rule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_aiml import __version__
from pytest_aiml.engine.cache import FORMAT_VERSION, file_digest, rule_source_files
from pytest_aiml.engine.discovery import RepoFiles
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.inventory import Inventory
from pytest_aiml.engine.reads import ReadLog, digest
from pytest_aiml.engine.rule import RepoRule

log = logging.getLogger("pytest_aiml.repository")


@dataclass(frozen=True)
class RepositoryResults:
    """The findings of each repository rule, and everything the rules and their inventory read."""

    findings: Mapping[str, tuple[Finding, ...]]
    #: The traceback of each rule that raised, by rule code; such a run is never cached.
    errors: Mapping[str, str] = field(default_factory=dict)
    #: Other facts computed from the inventory with the rules, such as the summary's maturity level.
    #: They are builtins only, so that they can be cached.
    facts: Mapping[str, Any] = field(default_factory=dict)
    reads: ReadLog = field(default_factory=ReadLog)


def run_repository_rules(
    rules: Sequence[type[RepoRule]], inventory: Inventory, facts: Mapping[str, Callable[[Inventory], Any]] | None = None
) -> RepositoryResults:
    """Check every rule of ``rules`` on ``inventory`` and compute ``facts``, recording each file they read.

    The rules run on a copy of the inventory without its memoised facts (serving apps,
    preprocessing constants). A fact computed earlier in the run, outside this
    recording, would otherwise hide the reads it took from the log. A rule that raises
    does not stop the others: its traceback is kept for its item to show.
    """
    fresh = dataclasses.replace(inventory)
    findings: dict[str, tuple[Finding, ...]] = {}
    errors: dict[str, str] = {}
    started = time.perf_counter()
    with inventory.repo.reads.recording() as reads:
        for rule in rules:
            try:
                found = rule().check(fresh)
                findings[rule.code] = tuple(sorted(found, key=lambda finding: (finding.path, finding.line, finding.column)))
            except Exception:  # noqa: BLE001 - reported by the rule's own item
                errors[rule.code] = traceback.format_exc()
        computed = {name: compute(fresh) for name, compute in (facts or {}).items()}
    reads.update(inventory.reads)
    log.debug("checked %d repository rules in %.2fs; they read %d files", len(rules), time.perf_counter() - started,
              len({read.path for read in reads.fingerprints}))
    return RepositoryResults(findings=findings, errors=errors, facts=computed, reads=reads)


class RepositoryCache:
    """The last run's repository results under ``directory``, reused while nothing they read changed.

    One entry, rewritten atomically. Its key is the salt (the rules and the code they
    run) and the repository's listing, and it contains the log of reads. A None
    directory caches nothing.
    """

    FILE_NAME = "repository.json"

    def __init__(self, directory: Path | None, salt: str) -> None:
        self.directory = directory
        self.salt = salt

    def key(self, repo: RepoFiles) -> str:
        return digest(self.salt.encode() + b"\0" + "\0".join(repo.paths).encode())

    def get(self, repo: RepoFiles) -> RepositoryResults | None:
        if self.directory is None:
            return None
        target = self.directory / self.FILE_NAME
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
            if data["key"] != self.key(repo):
                return None
            reads = ReadLog.from_serialized(data["reads"])
            findings = {
                code: tuple(Finding.from_serialized(finding) for finding in entries)
                for code, entries in data["findings"].items()
            }
            facts = dict(data["facts"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.debug("ignoring unreadable %s: %s", target, error)
            return None
        if not reads.unchanged(repo.root):
            return None
        return RepositoryResults(findings=findings, facts=facts, reads=reads)

    def put(self, repo: RepoFiles, results: RepositoryResults) -> None:
        if self.directory is None or results.errors:
            return
        target = self.directory / self.FILE_NAME
        entry = {
            "key": self.key(repo),
            "reads": results.reads.serialized(),
            "findings": {code: [finding.serialized() for finding in found] for code, found in results.findings.items()},
            "facts": dict(results.facts),
        }
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(entry, stream)
            os.replace(temporary, target)
        except OSError as error:
            log.debug("cannot write %s: %s", target, error)


def repository_salt(rules: Sequence[type[RepoRule]], facts: Sequence[str] = ()) -> str:
    """Digest what the repository results depend on besides the repository's files.

    That is the rules that run and the facts computed with them, and the source of every
    module of this package. The rules lean on the inventory, the signals and shared
    helpers, and a development checkout changes without a version bump. The salt also
    covers the sources of custom rules, and whether pyarrow can read Parquet data files.
    """
    hasher = hashlib.sha256(f"{FORMAT_VERSION}\0{__version__}\0{sys.version_info[:2]}".encode())
    hasher.update(f"\0pyarrow={importlib.util.find_spec('pyarrow') is not None}\0{sorted(facts)}".encode())
    package = Path(__file__).resolve().parent.parent
    sources = {str(path) for path in package.rglob("*.py")} | {str(path) for path in (package / "data").glob("*")}
    for rule in sorted(rules, key=lambda rule: rule.code):
        hasher.update(f"\0{rule.code}\0{rule.__module__}.{rule.__qualname__}".encode())
    sources |= {str(path) for path in rule_source_files(rules)}
    for path in sorted(sources):
        hasher.update(f"\0{file_digest(Path(path))}".encode())
    return hasher.hexdigest()
