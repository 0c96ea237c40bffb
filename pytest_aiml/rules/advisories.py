"""Dependency advisory rules: exact pins of ML packages older than a known security fix.

The advisories come from ``pytest_aiml/data/advisories.json``, a table shipped with the
package and checked entry by entry against the published advisories on the date it
records. A rule has one priority, so the pins split by the worst advisory that affects
them: AIML104 (high) for a critical or high advisory, AIML105 (low) for the rest. Each
pin yields one finding of one of the two rules, listing all its advisories.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pytest_aiml.engine.dependencies import Pin
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.inventory import Inventory
from pytest_aiml.engine.rule import Category, Effort, Example, Priority, RepoRule

SEVERITIES = ("critical", "high", "medium", "low")
SEVERE = frozenset({"critical", "high"})


@dataclass(frozen=True, slots=True)
class AffectedRange:
    """Versions ``v`` with ``introduced <= v < fixed``; no ``introduced`` means every earlier version."""

    introduced: Version | None
    fixed: Version

    def contains(self, version: Version) -> bool:
        return (self.introduced is None or version >= self.introduced) and version < self.fixed


@dataclass(frozen=True, slots=True)
class Advisory:
    """One published advisory on one package, as the shipped table records it."""

    package: str
    ranges: tuple[AffectedRange, ...]
    ids: tuple[str, ...]
    severity: str
    url: str
    summary: str

    def range_containing(self, version: Version) -> AffectedRange | None:
        return next((affected for affected in self.ranges if affected.contains(version)), None)


@dataclass(frozen=True, slots=True)
class AdvisoryTable:
    built: str
    advisories: tuple[Advisory, ...]

    def for_package(self, package: str) -> tuple[Advisory, ...]:
        name = canonicalize_name(package)
        return tuple(advisory for advisory in self.advisories if advisory.package == name)


@cache
def advisory_table() -> AdvisoryTable:
    """Read the advisory table shipped in ``pytest_aiml/data`` once per process."""
    text = resources.files("pytest_aiml").joinpath("data/advisories.json").read_text(encoding="utf-8")
    return parse_table(json.loads(text))


def parse_table(document: dict) -> AdvisoryTable:
    """Build the table from its JSON document; raises ValueError naming the first invalid entry."""
    advisories = []
    for index, entry in enumerate(document["advisories"]):
        try:
            severity = entry["severity"]
            if severity not in SEVERITIES:
                raise ValueError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
            ranges = tuple(
                AffectedRange(
                    introduced=None if span["introduced"] == "0" else Version(span["introduced"]),
                    fixed=Version(span["fixed"]),
                )
                for span in entry["ranges"]
            )
            if not ranges or not entry["ids"]:
                raise ValueError("an advisory needs at least one range and one id")
            advisories.append(
                Advisory(
                    package=canonicalize_name(entry["package"]),
                    ranges=ranges,
                    ids=tuple(entry["ids"]),
                    severity=severity,
                    url=entry["url"],
                    summary=entry["summary"],
                )
            )
        except (KeyError, TypeError, ValueError, InvalidVersion) as error:
            raise ValueError(f"advisory entry {index} of the advisory table is invalid: {error}") from error
    return AdvisoryTable(built=document["built"], advisories=tuple(advisories))


@dataclass(frozen=True, slots=True)
class PinnedAdvisories:
    """An exact pin and the advisories whose affected ranges contain its version."""

    pin: Pin
    version: Version
    matches: tuple[tuple[Advisory, AffectedRange], ...]

    @property
    def severe(self) -> bool:
        return any(advisory.severity in SEVERE for advisory, _ in self.matches)

    @property
    def first_safe_version(self) -> Version:
        """Return the lowest version that every matched advisory counts as fixed."""
        return max(affected.fixed for _, affected in self.matches)


def vulnerable_pins(inventory: Inventory) -> Iterator[PinnedAdvisories]:
    """Yield each distinct exact pin of the repository that a known advisory affects."""
    # NOTE: Pipfile.lock and ``name @ URL`` wheel requirements give no pins in the
    # dependency layer, so the versions they install are not checked.
    table = advisory_table()
    seen: set[tuple[str, str, str]] = set()
    for package, pins in inventory.pins.items():
        advisories = table.for_package(package)
        if not advisories:
            continue
        for pin in pins:
            version = exact_version(pin)
            if version is None or (package, pin.source, str(version)) in seen:
                continue
            seen.add((package, pin.source, str(version)))
            matches = []
            for advisory in advisories:
                affected = advisory.range_containing(version)
                if affected is not None:
                    matches.append((advisory, affected))
            if matches:
                matches.sort(key=lambda match: (SEVERITIES.index(match[0].severity), match[0].ids))
                yield PinnedAdvisories(pin, version, tuple(matches))


def exact_version(pin: Pin) -> Version | None:
    """Return the version an exact pin (``==``, ``===``, a lock entry) installs, or None for a range."""
    if not pin.exact:
        return None
    text = pin.specifier.lstrip("=").strip()
    try:
        return Version(text)
    except InvalidVersion:
        return None


def pin_line(text: str, package: str, version: Version) -> int:
    """Find the 1-based line of ``text`` that pins ``package`` to ``version``; 0 when none does.

    Requirement, pyproject and conda lines name the package and the version on one line.
    A lock file names the package on one line and its version on one of the next few.
    """
    lines = text.splitlines()
    written = {str(version), version.public}
    for number, line in enumerate(lines, start=1):
        if _names_package(line, package) and any(_has_version(line, value) for value in written):
            return number
    for number, line in enumerate(lines, start=1):
        match = re.match(r'\s*name\s*=\s*"([^"]+)"', line)
        if match and canonicalize_name(match.group(1)) == package:
            following = lines[number : number + 3]
            if any(_has_version(nearby, value) for nearby in following for value in written):
                return number
    return 0


def _names_package(line: str, package: str) -> bool:
    return any(canonicalize_name(word) == package for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", line))


def _has_version(line: str, version: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(version)}(?![\w.])", line) is not None


def describe(found: PinnedAdvisories) -> str:
    """Render the finding message: the pin, each advisory with its severity and fix, the version to upgrade to."""
    pin = f"{found.pin.package}=={found.version}"
    parts = [f"{'/'.join(advisory.ids)} ({advisory.severity}, fixed in {affected.fixed})" for advisory, affected in found.matches]
    if len(found.matches) == 1:
        advisory = found.matches[0][0]
        listed = f"{parts[0]}: {advisory.summary}"
    else:
        listed = f"{len(parts)} advisories: " + "; ".join(parts)
    return f"{pin} is affected by {listed}; upgrade to {found.first_safe_version} or later"


class _AdvisoryRule(RepoRule):
    """Shared check of the two advisory rules; ``severe`` selects which pins belong to the rule."""

    severe: bool

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        texts: dict[str, str] = {}
        for found in vulnerable_pins(inventory):
            if found.severe != self.severe:
                continue
            source = found.pin.source
            if source not in texts:
                texts[source] = inventory.repo.read_text(source) or ""
            line = pin_line(texts[source], found.pin.package, found.version)
            lines = texts[source].splitlines()
            yield Finding(
                code=self.code,
                path=source,
                line=line,
                column=1 if line else 0,
                message=describe(found),
                # The pin as written, so a baseline entry survives edits elsewhere in the file.
                snippet=lines[line - 1].strip() if line else "",
            )


_IMPACT = (
    "A pinned version with a published vulnerability is installed on every machine that runs the "
    "project; for ML packages these are often code execution on model or data load, path traversal "
    "in model servers and tracking servers, or denial of service of the serving API."
)
_FIX = (
    "Upgrade the pin to the fixed release the finding names (or later), regenerate the lock file, and "
    "run a full advisory scanner such as pip-audit or osv-scanner in CI: this rule's table covers only "
    "common ML packages."
)


class VulnerableDependency(_AdvisoryRule):
    """Flag exact pins that a critical or high severity advisory affects."""

    code = "AIML104"
    slug = "vulnerable-dependency"
    category = Category.SECURITY
    priority = Priority.HIGH
    effort = Effort.LOW
    anti_pattern = "Outdated dependencies"
    message = "a pinned dependency has a known critical or high severity advisory"
    impact = _IMPACT
    fix = _FIX
    severe = True


class OutdatedDependency(_AdvisoryRule):
    """Flag exact pins that only medium or low severity advisories affect."""

    code = "AIML105"
    slug = "outdated-dependency"
    category = Category.SECURITY
    priority = Priority.LOW
    effort = Effort.LOW
    anti_pattern = "Outdated dependencies"
    message = "a pinned dependency has a known medium or low severity advisory"
    impact = _IMPACT
    fix = _FIX
    severe = False


VulnerableDependency.VALID = (
    Example(files={"requirements.txt": "torch==2.6.0\ntransformers==4.48.0\nmlflow==2.11.3\n"}),
    # A range does not say which version runs, so only exact pins are checked.
    Example(files={"requirements.txt": "torch>=2.1\nmlflow\npyyaml<6\n"}),
    Example(files={"requirements.txt": "requests==2.30.0\n"}),
    Example(files={"requirements.txt": "flask==2.2.5\nflask-cors==3.0.0\n"}),
    # A version between two affected ranges of the same advisory.
    Example(files={"requirements-web.txt": "flask==2.3.2\n"}),
    Example(files={"requirements.txt": "keras==2.13.1\n"}),
    Example(files={"requirements.txt": "keras==3.8.0\n"}),
    # llama-index's RunGptLLM advisory starts at 0.9.47; 0.9.46 is older than the bug.
    Example(files={"requirements.txt": "llama-index==0.9.46\n"}),
    Example(files={"pyproject.toml": '[project]\nname = "svc"\ndependencies = ["fastapi==0.115.0", "starlette>=0.40"]\n'}),
    Example(files={"requirements.txt": "torch==2.6.0+cu124\n"}),
    Example(files={"requirements.txt": "some-internal-package==0.0.1\n"}),
)
VulnerableDependency.INVALID = (
    Example(files={"requirements.txt": "numpy==1.26.4\ntorch==2.1.0\n"}, lines=(2,)),
    Example(files={"requirements.txt": "transformers==4.30.2  # pinned for the tokenizer\n"}, lines=(1,)),
    Example(files={"requirements-serve.txt": "fastapi==0.100.0\nstarlette==0.27.0\n"}, lines=(1, 2)),
    Example(files={"pyproject.toml": '[project]\nname = "x"\ndependencies = [\n  "mlflow==2.9.1",\n]\n'}, lines=(4,)),
    Example(files={"poetry.lock": '[[package]]\nname = "PyYAML"\nversion = "5.3"\n'}, lines=(2,)),
    Example(files={"requirements.txt": "torch==2.1.0+cu118\n"}, lines=(1,)),
    Example(files={"requirements.txt": "flask==2.3.1\n"}, lines=(1,)),
    Example(files={"environment.yml": "dependencies:\n  - python=3.10\n  - pillow=9.5.0\n"}, lines=(3,)),
)

OutdatedDependency.VALID = (
    Example(files={"requirements.txt": "scikit-learn==1.5.0\nrequests==2.31.0\n"}),
    Example(files={"requirements.txt": "requests==2.2.1\n"}),
    # A pin with a high severity advisory belongs to AIML104, not here.
    Example(files={"requirements.txt": "mlflow==2.9.1\n"}),
    Example(files={"requirements.txt": "scikit-learn~=1.4.0\n"}),
    Example(files={"requirements.txt": "streamlit==0.62.0\n"}),
)
OutdatedDependency.INVALID = (
    Example(files={"requirements.txt": "pandas==2.2.0\nscikit-learn==1.4.2\n"}, lines=(2,)),
    Example(files={"requirements.txt": "requests==2.28.1\n"}, lines=(1,)),
    Example(files={"requirements-dev.txt": "streamlit==1.29.0\n"}, lines=(1,)),
    # 0.3.x has only the medium advisory. 1.x before 1.3.3 also has a high one, reported by AIML104.
    Example(files={"requirements.txt": "langchain-core==0.3.80\n"}, lines=(1,)),
)

RULES = (VulnerableDependency, OutdatedDependency)
