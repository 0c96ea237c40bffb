"""Public fixtures for a repository's own tests: its model artifacts, and a loader that checks a file first.

- ``aiml_artifacts`` (session scope): the inspection of every model artifact of the
  repository, the same inspection that ``pytest --aiml`` reports on.
- ``aiml_load_model``: a function ``load(path, **options)`` that inspects the file
  and loads it only when its safety check passes.

Both work without ``--aiml``. This module imports only pytest, because pytest loads
it in every run: the inspection, torch, onnx and NumPy are imported when a fixture
or ``load`` needs them.

NOTE: waivers (the ``aiml_waive`` marker and the waivers of ``[tool.pytest-aiml]``)
do not apply to these fixtures yet, and the artifact settings of that table are not
read either: both fixtures inspect with the default ``ArtifactSettings()``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

logger = logging.getLogger("pytest_aiml.fixtures")

if TYPE_CHECKING:
    from pytest_aiml.artifacts.results import ArtifactInspection, CheckResult

__all__ = [
    "ArtifactLoadError",
    "UnsafeArtifactError",
    "UnsupportedArtifactError",
    "aiml_artifacts",
    "aiml_load_model",
    "inspect_repository_artifacts",
    "load_model",
]

PICKLE_REJECTION = (
    "pickle and joblib files are never loaded: unpickling calls every function the file names, and the "
    "scan can only show which functions those are, not that calling them is harmless. Save the model in a "
    "format that holds data only: safetensors or a torch.save state dict for PyTorch weights, ONNX for a "
    "runnable graph, skops for scikit-learn estimators, NumPy .npy/.npz for plain arrays"
)
#: Loader options and the only value each may take: any other value would allow pickles.
_FORCED_OPTIONS: Mapping[str, object] = {"weights_only": True, "allow_pickle": False}
_FORBIDDEN_OPTIONS = frozenset({"pickle_module"})


#: Formats that a waiver may load after a failed scan: torch.load(weights_only=True)
#: rebuilds only tensors and plain containers, whatever globals the file names.
_WAIVABLE_FORMATS = frozenset({"torch-zip", "torch-legacy"})


class ArtifactLoadError(RuntimeError):
    """A model file that ``aiml_load_model`` did not load. ``path`` is the file."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class UnsafeArtifactError(ArtifactLoadError):
    """A model file whose safety check did not pass, so it was not loaded.

    ``check`` is the name of the check (``"safety"``), ``status`` its status
    (``fail``, ``unscannable`` or ``skip``), and ``summary`` and ``details`` its result:
    the offending pickle globals, the unreadable parts, or why nothing was read.
    """

    def __init__(self, path: Path, check: str, result: CheckResult) -> None:
        self.check = check
        self.status = result.status
        self.summary = result.summary
        self.details = result.details
        problem = f"not loaded because its {check} check is '{result.status}': {result.summary}"
        if result.details:
            problem += "".join(f"\n  - {detail}" for detail in result.details)
        super().__init__(path, problem)


class UnsupportedArtifactError(ArtifactLoadError):
    """A model file in a format that ``aiml_load_model`` does not load, or cannot load here."""


def inspect_repository_artifacts(root: Path) -> list[ArtifactInspection]:
    """Inspect every file under ``root`` that is named like a model, sorted by path.

    Files are listed as ``pytest --aiml`` lists them (git's view of the repository,
    or a folder walk outside git). A file named like a model whose bytes match no
    model format is left out. Nothing is executed.
    """
    from pytest_aiml.artifacts import has_model_extension
    from pytest_aiml.artifacts.inspect import inspect_artifact
    from pytest_aiml.artifacts.repository_context import build_repository_context
    from pytest_aiml.artifacts.settings import ArtifactSettings
    from pytest_aiml.artifacts.sniff import NOT_A_MODEL
    from pytest_aiml.engine.discovery import discover

    repo = discover(root)
    settings = ArtifactSettings()
    context = build_repository_context(repo.root, repo.paths)
    inspections = []
    for rel_path in repo.paths:
        if not has_model_extension(rel_path):
            continue
        inspection = inspect_artifact(
            repo.root / rel_path, rel_path, root=repo.root, repo_files=repo.paths, settings=settings, context=context
        )
        if inspection.format != NOT_A_MODEL:
            inspections.append(inspection)
    return inspections


def load_model(path: str | os.PathLike[str], *, waiver: str | None = None, **options: Any) -> Any:
    """Inspect the model file at ``path`` and load it when its safety check passes.

    Returns what the format's own loader returns:

    - ``torch.save`` files (zip or legacy): the object of
      ``torch.load(path, weights_only=True, map_location="cpu")``, usually a state dict;
    - TorchScript archives: the ``torch.jit.ScriptModule``;
    - ``torch.export`` archives (``.pt2``): the ``torch.export.ExportedProgram``;
    - ONNX: an onnxruntime ``InferenceSession`` on the CPU provider, once
      ``onnx.checker`` passes;
    - safetensors: a dict of tensors; ``.npy``: an array; ``.npz``: a dict of arrays.

    ``options`` go to that loader (``mmap=True``, ``providers=[...]``,
    ``sess_options=...``). Options that would allow pickles raise ``ValueError``.

    Raises ``FileNotFoundError`` for a missing file, ``UnsafeArtifactError`` when
    the safety check is not "pass" (unscannable files and Git LFS pointers
    included), ``UnsupportedArtifactError`` for pickles, joblib files and formats
    without a loader here, and ``ArtifactLoadError`` when the loader itself fails.

    ``waiver`` is the reason of an ``aiml_waive("AIML701", ...)`` marker on the
    calling test. It lets a ``torch.save`` file whose scan did not pass load anyway,
    through ``torch.load(weights_only=True)``, whose restricted unpickler rebuilds
    tensors and plain containers only; every other format still raises.

    Note that ``torch.jit.load`` runs the TorchScript code stored in the file, which
    the inspection does not judge. The file is read twice, once to inspect it and
    once to load it, so a file replaced in between is loaded unchecked.
    """
    from pytest_aiml.artifacts.inspect import inspect_artifact
    from pytest_aiml.artifacts.results import CHECK_SAFETY, STATUS_PASS
    from pytest_aiml.artifacts.settings import ArtifactSettings

    _check_options(options)
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"model file not found (missing, or not a regular file): {file}")
    # Safety depends only on the file's bytes (and, for ONNX, its own folder), so the
    # file is inspected as a repository of one file: no repository walk per load.
    inspection = inspect_artifact(file, file.name, root=file.parent, repo_files=(file.name,), settings=ArtifactSettings())
    safety = inspection.checks[CHECK_SAFETY]
    if safety.status != STATUS_PASS:
        if waiver is None or inspection.format not in _WAIVABLE_FORMATS:
            raise UnsafeArtifactError(file, CHECK_SAFETY, safety)
        logger.warning("loading %s although its safety check is %s, waived: %s", file, safety.status, waiver)
    return _load_format(file, inspection.format, dict(options))


def _check_options(options: Mapping[str, Any]) -> None:
    forbidden = sorted(_FORBIDDEN_OPTIONS & options.keys())
    if forbidden:
        raise ValueError(f"{forbidden[0]}= is not accepted: aiml_load_model never loads files through pickle")
    for name, required in _FORCED_OPTIONS.items():
        if name in options and options[name] is not required:
            raise ValueError(
                f"{name}={options[name]!r} is not accepted: aiml_load_model always loads with {name}={required}"
            )


def _load_format(file: Path, format_name: str, options: dict[str, Any]) -> Any:
    from pytest_aiml.artifacts import sniff

    if format_name in (sniff.PICKLE, sniff.JOBLIB):
        raise UnsupportedArtifactError(file, PICKLE_REJECTION)
    if format_name in (sniff.TORCH_ZIP, sniff.TORCH_LEGACY, sniff.TORCHSCRIPT, sniff.ZIP):
        return _load_torch(file, format_name, options)
    if format_name == sniff.ONNX:
        return _load_onnx(file, options)
    if format_name == sniff.SAFETENSORS:
        return _load_safetensors(file, options)
    if format_name in (sniff.NPY, sniff.NPZ):
        return _load_numpy(file, format_name, options)
    raise UnsupportedArtifactError(
        file,
        f"aiml_load_model does not load {format_name} files; load it with its own library, after checking "
        "its entry in aiml_artifacts",
    )


def _load_torch(file: Path, format_name: str, options: dict[str, Any]) -> Any:
    import torch

    from pytest_aiml.artifacts import sniff
    from pytest_aiml.serving.loading import torch_file_format

    if format_name == sniff.TORCHSCRIPT:
        kind = "torchscript"
    elif format_name == sniff.TORCH_LEGACY:
        kind = "state_dict"
    else:
        kind = torch_file_format(file)
        if format_name == sniff.ZIP and kind == "state_dict":
            raise UnsupportedArtifactError(file, "the zip archive is neither a torch.save, TorchScript nor torch.export file")
    try:
        if kind == "torchscript":
            options.setdefault("map_location", "cpu")
            return torch.jit.load(str(file), **options)
        if kind == "torch.export":
            return torch.export.load(str(file), **options)
        options.setdefault("map_location", "cpu")
        options["weights_only"] = True
        return torch.load(str(file), **options)
    except Exception as exc:  # torch raises many unrelated types for a broken or disallowed file
        raise ArtifactLoadError(file, f"{kind} load failed: {type(exc).__name__}: {exc}") from exc


def _load_onnx(file: Path, options: dict[str, Any]) -> Any:
    import onnx
    import onnxruntime

    try:
        # The path form lets the checker follow external data and models over 2 GB.
        onnx.checker.check_model(str(file))
    except (onnx.checker.ValidationError, ValueError, OSError) as exc:
        raise ArtifactLoadError(file, f"onnx.checker rejected the model: {exc}") from exc
    options.setdefault("providers", ["CPUExecutionProvider"])
    try:
        return onnxruntime.InferenceSession(str(file), **options)
    except Exception as exc:  # onnxruntime raises its own exception types from C++
        raise ArtifactLoadError(file, f"onnxruntime could not create a session: {type(exc).__name__}: {exc}") from exc


def _load_safetensors(file: Path, options: dict[str, Any]) -> Any:
    try:
        from safetensors.torch import load_file
    except ImportError as exc:
        raise UnsupportedArtifactError(
            file, f"loading safetensors files needs the safetensors package: pip install safetensors ({exc})"
        ) from exc
    try:
        return load_file(str(file), **options)
    except Exception as exc:  # safetensors raises its own SafetensorError for malformed files
        raise ArtifactLoadError(file, f"safetensors load failed: {type(exc).__name__}: {exc}") from exc


def _load_numpy(file: Path, format_name: str, options: dict[str, Any]) -> Any:
    import numpy

    from pytest_aiml.artifacts import sniff

    options["allow_pickle"] = False
    try:
        loaded = numpy.load(str(file), **options)
        if format_name == sniff.NPZ:
            # Copy the arrays out so that no open archive is left behind.
            with loaded as archive:
                return {name: archive[name] for name in archive.files}
        return loaded
    except ValueError as exc:
        # NumPy raises ValueError for object arrays when allow_pickle is False.
        raise ArtifactLoadError(
            file, f"NumPy load failed: {exc} Object arrays need pickle, so save plain numeric arrays instead"
        ) from exc


@pytest.fixture(scope="session")
def aiml_artifacts(pytestconfig: pytest.Config) -> list[ArtifactInspection]:
    """Inspections of every model artifact of the repository under pytest's rootdir, sorted by path.

    Each ``ArtifactInspection`` has the file's format, framework, size, version and
    the results of its safety, versioning, validity and documentation checks.
    """
    return inspect_repository_artifacts(pytestconfig.rootpath)


@pytest.fixture
def aiml_load_model(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """A function ``load(path, **options)`` that loads a model file only after its safety check passes.

    A relative ``path`` is taken from pytest's rootdir. See :func:`load_model` for
    what each format returns and the errors raised. An unexpired
    ``aiml_waive("AIML701", reason=...)`` marker on the test lets ``torch.save`` files
    that failed the scan load through ``weights_only=True``.
    """
    root = request.config.rootpath
    waiver = _unsafe_artifact_waiver(request.node)

    def load(path: str | os.PathLike[str], **options: Any) -> Any:
        return load_model(root / path, waiver=waiver, **options)

    return load


@pytest.fixture
def aiml_compare_models() -> Callable[..., Any]:
    """A function ``compare(torch_model, onnx_model, inputs=None, *, tolerances=None, seed=0)``.

    It runs both models on generated inputs (from ``inputs``, a list of
    ``{"name", "dtype", "shape", "min", "max"}`` tables, else the ONNX signature) with
    the same tolerances as the parity items, and raises ``AssertionError`` with the
    error figures when they differ; otherwise it returns the ``ParityResult``.
    ``onnx_model`` is a path or an onnxruntime session.
    """

    def compare(torch_model: Any, onnx_model: Any, inputs: Any = None, *, tolerances: Any = None, seed: int = 0) -> Any:
        from pytest_aiml.serving.inputs import generate_input_groups, signature_from_session
        from pytest_aiml.serving.loading import load_onnx_session
        from pytest_aiml.serving.parity import check_parity
        from pytest_aiml.serving.spec import InputSpec, Tolerance

        session = load_onnx_session(Path(onnx_model)) if isinstance(onnx_model, (str, os.PathLike)) else onnx_model
        specs = [InputSpec(**{**spec, "shape": tuple(spec["shape"])}) for spec in inputs] if inputs else None
        groups = generate_input_groups(specs or signature_from_session(session), seed=seed)
        overrides = {name: Tolerance(**value) for name, value in (tolerances or {}).items()}
        result = check_parity(torch_model, session, groups, tolerances=overrides)
        if not result.passed:
            raise AssertionError(result.failure_text())
        return result

    return compare


@pytest.fixture
def aiml_measure_latency() -> Callable[..., Any]:
    """A function ``measure(call, *, device="cpu", batch=1, p50_ms=None, p95_ms=None, p99_ms=None, **plan)``.

    ``call`` runs one prediction. It is timed with the method of the latency items
    (warm-up, garbage collection paused, ``perf_counter_ns`` or CUDA events) and
    returns the ``LatencyResult``; with a budget it raises ``AssertionError`` when a
    percentile exceeds it, and a ``cuda`` budget without a GPU skips the test.
    """

    def measure(call: Callable[[], Any], *, device: str = "cpu", batch: int = 1, name: str = "call", **budget: Any) -> Any:
        from pytest_aiml.serving.latency import check_latency
        from pytest_aiml.serving.spec import LatencyBudget

        limits = {key: budget.pop(key) for key in ("p50_ms", "p95_ms", "p99_ms") if key in budget}
        has_budget = any(value is not None for value in limits.values())
        plan = LatencyBudget(device=device, batch=batch, **(limits if has_budget else {"p99_ms": float("inf")}), **budget)
        result = check_latency(call, plan, model_name=name, runtime="python")
        if result.skipped:
            pytest.skip(result.reason)
        if has_budget and not result.passed:
            raise AssertionError(result.failure_text())
        return result

    return measure


@pytest.fixture
def aiml_declared_model(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    """A function ``load(name)`` returning ``(torch_model, onnx_session)`` of a model declared in
    ``[tool.pytest-aiml.models.<name>]``; a side the declaration lacks is None.

    Every file is inspected first, as the parity items do, and a file whose safety
    check does not pass raises ``UnsafeArtifactError`` before anything loads it.
    """
    root = request.config.rootpath

    def load(name: str) -> tuple[Any, Any]:
        from pytest_aiml.artifacts.inspect import inspect_artifact
        from pytest_aiml.artifacts.results import CHECK_SAFETY, STATUS_PASS
        from pytest_aiml.serving.loading import load_onnx_session, load_torch_model
        from pytest_aiml.serving.spec import parse_model_specs
        from pytest_aiml.settings import read_table

        specs = {spec.name: spec for spec in parse_model_specs(read_table(root).get("models", {}), root)}
        if name not in specs:
            declared = ", ".join(sorted(specs)) or "none"
            raise KeyError(f"no model {name!r} under [tool.pytest-aiml.models] (declared: {declared})")
        spec = specs[name]
        for path in (spec.torch, spec.weights, spec.onnx):
            if path is None:
                continue
            file = Path(path)
            inspection = inspect_artifact(file, file.name, root=file.parent, repo_files=(file.name,))
            if inspection.checks[CHECK_SAFETY].status != STATUS_PASS:
                raise UnsafeArtifactError(file, CHECK_SAFETY, inspection.checks[CHECK_SAFETY])
        torch_model = load_torch_model(spec, root) if spec.has_torch else None
        session = load_onnx_session(spec.onnx) if spec.onnx is not None else None
        return torch_model, session

    return load


def _unsafe_artifact_waiver(node: pytest.Item) -> str | None:
    """Return the reason of an unexpired ``aiml_waive`` marker covering AIML701, if any."""
    import datetime as dt

    from pytest_aiml.engine.waivers import parse_date

    for mark in node.iter_markers("aiml_waive"):
        covers = any("AIML701".startswith(str(code).upper()) for code in mark.args)
        reason = mark.kwargs.get("reason")
        expires = parse_date(mark.kwargs.get("expires"), f"aiml_waive on {node.nodeid}")
        if covers and isinstance(reason, str) and reason.strip() and (expires is None or expires >= dt.date.today()):
            return reason.strip()
    return None
