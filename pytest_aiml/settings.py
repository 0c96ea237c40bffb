"""``[tool.pytest-aiml]`` plus command-line options, loaded into one frozen settings object."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.engine.rule import Priority

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

TABLE = "tool.pytest-aiml"

#: Keys of ``[tool.pytest-aiml]`` and what each holds; anything else is a usage error.
KNOWN_KEYS: Mapping[str, str] = {
    "select": "rule codes or family prefixes to run (default: all)",
    "ignore": "rule codes or family prefixes to skip",
    "exclude": "path globs, relative to the rootdir, that are never scanned",
    "fail_on": "the lowest priority whose findings fail their item: critical, high, medium or low (default: low)",
    "waivers": "an array of tables: rules, paths, reason and expires of each waiver",
    "artifacts": "a table: include, exclude, max_read_mb, allowed_globals, allow_sklearn_classes, onnx_checker",
    "models": "one table per served model: onnx, torch or factory and weights, inputs, serving, tolerance, latency",
    "preprocessing": 'one table per preprocessing function ("module:function"): input, properties, output, ...',
}
ARTIFACT_KEYS = ("include", "exclude", "max_read_mb", "allowed_globals", "allow_sklearn_classes", "onnx_checker")


@dataclass(frozen=True)
class ArtifactOptions:
    """``[tool.pytest-aiml.artifacts]``: which files are artifacts and how they are read."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_read_bytes: int = 4 * 1024**3
    allowed_globals: tuple[str, ...] = ()
    allow_sklearn_classes: bool = True
    onnx_checker: bool = True


@dataclass(frozen=True)
class Settings:
    """Everything a pytest-aiml run is configured with."""

    rootdir: Path
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    report_path: Path | None = None
    fail_on: Priority = Priority.LOW
    baseline_path: Path | None = None
    baseline_update: bool = False
    strict_waivers: bool = False
    #: ``(source, selector)`` pairs: ``select``/``ignore`` of the table or ``--aiml-select``/``--aiml-ignore``.
    selector_sources: tuple[tuple[str, str], ...] = ()
    artifacts: ArtifactOptions = field(default_factory=lambda: ArtifactOptions())
    #: The whole ``[tool.pytest-aiml]`` table as read, for sections parsed by their own modules.
    table: Mapping[str, Any] = field(default_factory=dict)

    def selectors(self) -> list[tuple[str, str]]:
        """Return ``(source, selector)`` pairs, for naming where an unknown code came from."""
        return list(self.selector_sources)


def read_table(rootdir: Path) -> dict[str, Any]:
    """Read ``[tool.pytest-aiml]`` from the rootdir's ``pyproject.toml`` (empty when absent)."""
    path = rootdir / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError("pyproject.toml", f"is not valid TOML: {error}", "fix the file's syntax") from error
    table = document.get("tool", {}).get("pytest-aiml", {})
    if not isinstance(table, dict):
        raise ConfigError("", f"must be a table, not {type(table).__name__}", "write it as [tool.pytest-aiml]")
    return table


def load_settings(
    rootdir: Path,
    *,
    table: Mapping[str, Any] | None = None,
    cli_select: Sequence[str] = (),
    cli_ignore: Sequence[str] = (),
    report_path: Path | None = None,
    cli_fail_on: str | None = None,
    baseline_path: Path | None = None,
    baseline_update: bool = False,
    strict_waivers: bool = False,
) -> Settings:
    """Validate the table and merge the command-line options into it.

    Raises ConfigError for unknown keys and values of the wrong type; rule codes are
    checked against the registry later, when custom rules have been registered.
    """
    table = dict(read_table(rootdir) if table is None else table)
    unknown = sorted(key for key in table if key not in KNOWN_KEYS)
    if unknown:
        known = ", ".join(sorted(KNOWN_KEYS))
        raise ConfigError(unknown[0], f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
                          f"known keys are: {known}")
    select = _codes(table, "select") + _split_codes(cli_select)
    ignore = _codes(table, "ignore") + _split_codes(cli_ignore)
    sources = [("select", code) for code in _codes(table, "select")]
    sources += [("--aiml-select", code) for code in _split_codes(cli_select)]
    sources += [("ignore", code) for code in _codes(table, "ignore")]
    sources += [("--aiml-ignore", code) for code in _split_codes(cli_ignore)]
    exclude = _strings(table, "exclude")
    fail_on = _priority(cli_fail_on, "--aiml-fail-on") if cli_fail_on else _priority(table.get("fail_on", "low"), "fail_on")
    artifacts = _artifact_options(table.get("artifacts", {}))
    if baseline_update and baseline_path is None:
        raise ConfigError("--aiml-baseline-update", "needs --aiml-baseline PATH", "name the baseline file to write")
    return Settings(
        rootdir=rootdir,
        select=tuple(select),
        ignore=tuple(ignore),
        exclude=tuple(exclude),
        report_path=report_path,
        fail_on=fail_on,
        baseline_path=baseline_path,
        baseline_update=baseline_update,
        strict_waivers=strict_waivers,
        selector_sources=tuple(sources),
        artifacts=artifacts,
        table=table,
    )


def _artifact_options(table: object) -> ArtifactOptions:
    if not isinstance(table, dict):
        raise ConfigError("artifacts", f"must be a table, not {table!r}", "write it as [tool.pytest-aiml.artifacts]")
    unknown = sorted(set(table) - set(ARTIFACT_KEYS))
    if unknown:
        raise ConfigError(f"artifacts.{unknown[0]}", "unknown key", f"known keys are: {', '.join(ARTIFACT_KEYS)}")
    max_read_mb = table.get("max_read_mb", 4096)
    if isinstance(max_read_mb, bool) or not isinstance(max_read_mb, (int, float)) or max_read_mb <= 0:
        raise ConfigError("artifacts.max_read_mb", f"must be a positive number, not {max_read_mb!r}", "write e.g. max_read_mb = 2048")
    flags = {}
    for key in ("allow_sklearn_classes", "onnx_checker"):
        value = table.get(key, True)
        if not isinstance(value, bool):
            raise ConfigError(f"artifacts.{key}", f"must be true or false, not {value!r}")
        flags[key] = value
    allowed = _strings(table, "allowed_globals", prefix="artifacts.")
    for entry in allowed:
        if "." not in entry or entry.startswith(".") or entry.endswith("."):
            raise ConfigError("artifacts.allowed_globals", f"invalid entry {entry!r}", "write 'module.name' or 'module.*'")
    return ArtifactOptions(
        include=tuple(_strings(table, "include", prefix="artifacts.")),
        exclude=tuple(_strings(table, "exclude", prefix="artifacts.")),
        max_read_bytes=int(max_read_mb * 1024 * 1024),
        allowed_globals=tuple(allowed),
        **flags,
    )


def _priority(value: object, key: str) -> Priority:
    try:
        return Priority(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(priority.value for priority in Priority)
        raise ConfigError(key, f"invalid priority {value!r}", f"use one of {choices}") from None


def _strings(table: Mapping[str, Any], key: str, prefix: str = "") -> list[str]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(prefix + key, f"must be a list of strings, not {value!r}", f'write it as {key} = ["..."]')
    return value


def _codes(table: Mapping[str, Any], key: str) -> list[str]:
    return [code.strip().upper() for code in _strings(table, key) if code.strip()]


def _split_codes(values: Sequence[str]) -> list[str]:
    return [part.strip().upper() for value in values for part in value.split(",") if part.strip()]


def load_declarations(settings: Settings) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Parse the ``preprocessing`` and ``models`` tables and import what they name.

    Importing here makes an unimportable ``module:function`` a usage error at start,
    naming its key, instead of a failure of every item that needs it.
    """
    preprocessing_table = settings.table.get("preprocessing", {})
    models_table = settings.table.get("models", {})
    preprocessing: tuple[Any, ...] = ()
    models: tuple[Any, ...] = ()
    if preprocessing_table:
        from pytest_aiml.properties.resolve import resolve_spec_functions
        from pytest_aiml.properties.spec import parse_preprocessing_specs

        preprocessing = parse_preprocessing_specs(preprocessing_table)
        for spec in preprocessing:
            resolve_spec_functions(spec, settings.rootdir)
    if models_table:
        from pytest_aiml.serving.spec import parse_model_specs, resolve_reference

        models = parse_model_specs(models_table, settings.rootdir)
        for model in models:
            for field_name in ("factory", "sample_inputs", "serving"):
                reference = getattr(model, field_name)
                if reference is not None:
                    resolve_reference(reference, settings.rootdir, f"{model.key}.{field_name}")
    return preprocessing, models
