"""Run a rule on one of its own ``VALID`` / ``INVALID`` examples.

The test suite runs every example of every rule through this module, and a custom
rule's author can do the same in a few lines.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.dependencies import collect_pins
from pytest_aiml.engine.discovery import discover
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.inventory import build_inventory
from pytest_aiml.engine.rule import ArtifactRule, DeclaredRule, Example, FileRule, RepoRule, Rule
from pytest_aiml.engine.runner import analyze_text, applicable_rules

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def run_example(rule: type[Rule], example: Example) -> list[Finding]:
    """Return the findings ``rule`` reports on ``example``.

    A file rule analyses ``example.source`` as ``example.path``, with ``example.files``
    as the rest of the repository (a requirements file, say). A repository rule
    builds the inventory of ``example.files``.
    """
    with tempfile.TemporaryDirectory(prefix="aiml-example-") as folder:
        root = Path(folder)
        for relative, content in example.files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        repo = discover(root)
        if issubclass(rule, FileRule):
            context = RepoContext(pins=collect_pins(repo))
            # The pre-filter and the test-file exclusion apply, as they do in a real run.
            analysis = analyze_text(example.path, example.source, applicable_rules(example.path, example.source, [rule]), context)
            if analysis.failure is not None:
                raise ValueError(f"example of {rule.code} does not parse: {analysis.failure.render()}")
            return list(analysis.findings)
        if issubclass(rule, RepoRule):
            return list(rule().check(build_inventory(repo)))
        if issubclass(rule, ArtifactRule):
            from pytest_aiml.artifacts.inspect import inspect_artifact
            from pytest_aiml.rules.artifacts import artifact_findings

            inspection = inspect_artifact(root / example.path, example.path, root=root, repo_files=repo.paths)
            return artifact_findings(rule, inspection)
        if issubclass(rule, DeclaredRule):
            try:
                return _declared_findings(rule, root)
            finally:
                _forget_modules_under(root)
    raise TypeError(f"{rule!r} is neither a FileRule nor a RepoRule")



def _declared_findings(rule: type[DeclaredRule], root: Path) -> list[Finding]:
    """Run the preprocessing properties an example's ``pyproject.toml`` declares."""
    from pytest_aiml.properties.checks import PropertySettings, run_property
    from pytest_aiml.properties.resolve import resolve_spec_functions
    from pytest_aiml.properties.spec import parse_preprocessing_specs

    findings = []
    settings = PropertySettings(derandomize=True)
    document = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    table = document.get("tool", {}).get("pytest-aiml", {}).get("preprocessing", {})
    for spec in parse_preprocessing_specs(table):
        functions = resolve_spec_functions(spec, root)
        for name in spec.properties:
            if (name == "matches") != (rule.code == "AIML802"):
                continue
            result = run_property(spec, name, functions.function, twin=functions.twin, inverse=functions.inverse, settings=settings)
            if not result.passed:
                findings.append(Finding(code=rule.code, path="pyproject.toml", message=f"{spec.function} breaks '{name}': {result.explanation}"))
    return findings


def _forget_modules_under(root: Path) -> None:
    # Examples reuse module names such as ``features``; a cached module from one
    # example would otherwise answer the next one's import.
    prefix = str(root.resolve())
    for name, module in list(sys.modules.items()):
        location = getattr(module, "__file__", None) or ""
        if location.startswith(prefix):
            del sys.modules[name]
