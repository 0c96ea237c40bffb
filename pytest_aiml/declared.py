"""Generated items for what a repository declares: preprocessing properties and served models.

They hang under the rootdir's ``pyproject.toml``, where they are declared:
``pyproject.toml::AIML801-preprocessing-property[features:standardize-finite]``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_aiml.collect import AimlFailure, AimlItem, skip_item
from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.rule import DeclaredRule

if TYPE_CHECKING:
    from pytest_aiml.session import AimlSession

#: Keys under which these items record their measurements, for the report.
PREPROCESSING_PROPERTY = "aiml_preprocessing"
SERVING_PROPERTY = "aiml_serving"


class DeclaredFile(pytest.File):
    """``pyproject.toml`` as the parent of the items its declarations generate."""

    def __init__(self, *, aiml: AimlSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aiml = aiml

    def collect(self) -> Iterable[pytest.Item]:
        registry = self.aiml.registry
        for spec in self.aiml.preprocessing_specs:
            for name in spec.properties:
                code = "AIML802" if name == "matches" else "AIML801"
                if code in registry:
                    rule = registry.get(code)
                    yield PropertyItem.from_parent(
                        self, name=f"{code}-{rule.slug}[{spec.function}-{name}]", aiml=self.aiml, rule=rule,
                        spec=spec, property_name=name,
                    )
        for model in self.aiml.model_specs:
            if "AIML811" in registry and model.onnx is not None and model.has_torch:
                yield ServingItem.from_parent(
                    self, name=f"AIML811-{registry.get('AIML811').slug}[{model.name}]", aiml=self.aiml,
                    rule=registry.get("AIML811"), model=model, check="parity",
                )
            if "AIML812" in registry and (model.serving is not None or model.onnx is not None):
                yield ServingItem.from_parent(
                    self, name=f"AIML812-{registry.get('AIML812').slug}[{model.name}]", aiml=self.aiml,
                    rule=registry.get("AIML812"), model=model, check="probes",
                )
            if "AIML813" in registry:
                for budget in model.latency:
                    label = f"{model.name}-{budget.device}-batch{budget.batch}"
                    yield ServingItem.from_parent(
                        self, name=f"AIML813-{registry.get('AIML813').slug}[{label}]", aiml=self.aiml,
                        rule=registry.get("AIML813"), model=model, check="latency", budget=budget,
                    )


class PropertyItem(AimlItem):
    """One declared property of one preprocessing function, checked with hypothesis."""

    def __init__(self, *, rule: type[DeclaredRule], spec: Any, property_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule
        self.spec = spec
        self.property_name = property_name

    def runtest(self) -> None:
        from pytest_aiml.properties.checks import PropertySettings, run_property, unavailable_reason

        reason = unavailable_reason(self.spec)
        if reason is not None:
            skip_item(reason)
        try:
            functions = self.aiml.preprocessing_functions(self.spec)
        except ConfigError as error:
            raise AimlFailure(f"pytest-aiml: {error}") from None
        settings = PropertySettings.for_spec(self.spec, environ=os.environ, database_dir=self.aiml.hypothesis_directory)
        result = run_property(
            self.spec, self.property_name, functions.function, twin=functions.twin, inverse=functions.inverse,
            settings=settings,
        )
        self.record(PREPROCESSING_PROPERTY, result.to_dict())
        path, line = _source_location(functions.function, self.aiml.settings.rootdir)
        findings = []
        if not result.passed:
            example = f"; falsifying example: {result.falsifying_example}" if result.falsifying_example else ""
            findings.append(
                Finding(
                    code=self.rule.code, path=path, line=line, column=1 if line else 0,
                    message=f"{self.spec.function} breaks '{self.property_name}': {result.explanation.rstrip('.')}{example}",
                    snippet=f"{self.spec.function} {self.property_name}",
                )
            )
        self.conclude(self.rule, self.spec.function, findings, None)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = _declaration_line(self.path, f'preprocessing."{self.spec.function}"')
        return self.path, line, f"{self.rule.code} {self.spec.function} {self.property_name}"


class ServingItem(AimlItem):
    """Parity, input probes or one latency budget of one declared or auto-paired model."""

    def __init__(self, *, rule: type[DeclaredRule], model: Any, check: str, budget: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule
        self.model = model
        self.check = check
        self.budget = budget

    def runtest(self) -> None:
        refusal = self.aiml.unsafe_model_files(self.model)
        if refusal:
            finding = Finding(code=self.rule.code, path=refusal[0], message=f"not loaded: {refusal[1]}", snippet=refusal[1])
            self.conclude(self.rule, self.model.name, [finding], None)
            return
        root = self.aiml.settings.rootdir
        try:
            if self.check == "parity":
                outcome = self._parity(root)
            elif self.check == "probes":
                outcome = self._probes(root)
            else:
                outcome = self._latency(root)
        except ConfigError as error:
            raise AimlFailure(f"pytest-aiml: {error}") from None
        passed, text, record = outcome
        self.record(SERVING_PROPERTY, {"model": self.model.name, "check": self.check, **record})
        findings = []
        if not passed:
            location = _relative(self.model.onnx or self.model.torch, root) if (self.model.onnx or self.model.torch) else "pyproject.toml"
            findings.append(Finding(code=self.rule.code, path=location, message=text, snippet=f"{self.model.name} {self.check}"))
        self.conclude(self.rule, self.model.name, findings, None)

    def _loaded(self, root: Path) -> tuple[Any, Any]:
        supplied = self.config.hook.pytest_aiml_load_model(spec=self.model, root=root)
        return supplied if supplied is not None else (None, None)

    def _parity(self, root: Path) -> tuple[bool, str, dict[str, Any]]:
        from pytest_aiml.serving.parity import check_model_parity

        torch_model, onnx_session = self._loaded(root)
        samples = self.config.hook.pytest_aiml_sample_inputs(spec=self.model, root=root)
        result = check_model_parity(
            self.model, root, torch_model=torch_model, onnx_session=onnx_session, extra_samples=samples
        )
        return result.passed, result.failure_text(), {"parity": result.to_dict()}

    def _probes(self, root: Path) -> tuple[bool, str, dict[str, Any]]:
        from pytest_aiml.serving.inputs import signature_from_session
        from pytest_aiml.serving.loading import load_onnx_session
        from pytest_aiml.serving.probes import run_probes
        from pytest_aiml.serving.spec import resolve_reference

        session = None
        if self.model.onnx is not None:
            session = self._loaded(root)[1] or load_onnx_session(self.model.onnx)
        if self.model.serving is not None:
            target = resolve_reference(self.model.serving, root, f"{self.model.key}.serving")
        else:
            target = session
        inputs = self.model.inputs or (signature_from_session(session) if session is not None else ())
        if not inputs:
            raise AimlFailure(
                f"pytest-aiml: {self.model.key}: declare 'inputs' so the serving entry point can be probed"
            )
        report = run_probes(target, inputs, name=self.model.serving or str(self.model.onnx))
        if report.skipped:
            skip_item(report.skipped if isinstance(report.skipped, str) else "input probes skipped")
        return report.passed, report.failure_text(), {"probes": report.to_dict()}

    def _latency(self, root: Path) -> tuple[bool, str, dict[str, Any]]:
        from pytest_aiml.serving.latency import check_model_latency

        result = check_model_latency(self.model, self.budget, root)
        record = {"latency": result.to_dict()}
        if result.skipped:
            self.record(SERVING_PROPERTY, {"model": self.model.name, "check": self.check, **record})
            skip_item(result.reason)
        return result.passed, result.failure_text() or result.summary(), record

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = _declaration_line(self.path, f"models.{self.model.name}")
        return self.path, line, f"{self.rule.code} {self.model.name} {self.check}"


def _declaration_line(pyproject: Path, table: str) -> int:
    """Return the 0-based line of ``[tool.pytest-aiml.<table>]``, or 0 when it is not written out."""
    header = f"[tool.pytest-aiml.{table}]"
    try:
        lines = pyproject.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    return next((number for number, line in enumerate(lines) if line.strip() == header), 0)


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _source_location(function: Any, root: Path) -> tuple[str, int]:
    """Return where a function is defined, relative to the rootdir, for the finding's location."""
    try:
        source = inspect.getsourcefile(function)
        _, line = inspect.getsourcelines(function)
    except (OSError, TypeError):
        return "pyproject.toml", 0
    if source is None:
        return "pyproject.toml", 0
    return _relative(Path(source), root), line
