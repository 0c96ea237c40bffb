"""Model declarations: the ``[tool.pytest-aiml.models.<name>]`` tables.

A repository declares each served model in ``pyproject.toml``::

    [tool.pytest-aiml.models.churn]
    onnx = "models/churn_v2.onnx"
    torch = "models/churn_v2.pt"            # TorchScript or torch.export file; or instead:
    factory = "churn.model:build"           # returns the nn.Module
    weights = "models/churn_v2_state.pt"    # state dict for the factory (weights_only=True)
    inputs = [{ name = "features", dtype = "float32", shape = ["batch", 8], min = -3.0, max = 3.0 }]
    sample_inputs = "churn.samples:batches"
    serving = "churn.serve:predict"
    tolerance = { logits = { rtol = 1e-3, atol = 1e-5 } }
    latency = [{ device = "cpu", batch = 1, p95_ms = 20.0 }]

:func:`parse_model_specs` turns the ``models`` table into :class:`ModelSpec` values
and raises :class:`~pytest_aiml.engine.errors.ConfigError` with the dotted key
(``models.churn.onnx``) for unknown keys, wrong types and missing files.
:func:`pair_artifacts` pairs undeclared TorchScript / ``torch.export`` files with a
same-stem ``.onnx`` file. ``module:callable`` strings stay strings here and are
imported only when a check needs them, by :func:`resolve_reference`.

Nothing in this module imports torch, onnx or onnxruntime.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pytest_aiml.engine.errors import ConfigError

__all__ = [
    "DTYPE_NAMES",
    "InputSpec",
    "LatencyBudget",
    "ModelSpec",
    "Tolerance",
    "pair_artifacts",
    "parse_model_specs",
    "resolve_reference",
]

# Tensor element types accepted in ``inputs[].dtype``, spelled as numpy and torch
# spell them. ``bfloat16`` is accepted although numpy has no such type, so input
# generation rejects it with its own error.
DTYPE_NAMES = (
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
)

LATENCY_DEVICES = ("cpu", "cuda")
LATENCY_RUNTIMES = ("onnx", "torch")
PERCENTILE_KEYS = ("p50_ms", "p95_ms", "p99_ms")

TORCH_SUFFIXES = (".pt", ".pt2")

_MODEL_KEYS = (
    "onnx",
    "torch",
    "factory",
    "weights",
    "inputs",
    "sample_inputs",
    "serving",
    "tolerance",
    "latency",
)
_INPUT_KEYS = ("name", "dtype", "shape", "min", "max")
_TOLERANCE_KEYS = ("rtol", "atol")
_LATENCY_KEYS = (
    "device",
    "batch",
    *PERCENTILE_KEYS,
    "runtime",
    "warmup_calls",
    "warmup_s",
    "min_samples",
    "min_s",
    "max_s",
)


@dataclass(frozen=True, slots=True)
class Tolerance:
    """Elementwise tolerance: ``|onnx - torch| <= atol + rtol * |torch|``."""

    rtol: float
    atol: float


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One model input: its name, element type and shape.

    ``shape`` contains an ``int`` for a fixed dimension and a ``str`` (the axis name,
    such as ``"batch"``) for a dynamic one. ``min`` and ``max`` bound generated
    values; ``None`` means unbounded.
    """

    name: str
    dtype: str
    shape: tuple[int | str, ...]
    min: float | None = None
    max: float | None = None

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        """Positions of the dynamic dimensions."""
        return tuple(i for i, dim in enumerate(self.shape) if isinstance(dim, str))


@dataclass(frozen=True, slots=True)
class LatencyBudget:
    """A latency budget for one device and batch size, with its sampling plan.

    At least one of ``p50_ms``, ``p95_ms`` and ``p99_ms`` is set. ``runtime`` names
    what is timed, ``"onnx"`` or ``"torch"``. ``None`` means the ONNX session when
    the model declares one, else the Torch model. The remaining fields are the
    sampling plan. Warm-up runs until both ``warmup_calls`` calls and ``warmup_s``
    seconds are done. Sampling runs until both ``min_samples`` samples and ``min_s``
    seconds are collected, and stops at ``max_s`` seconds regardless.
    """

    device: str
    batch: int
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    runtime: str | None = None
    warmup_calls: int = 10
    warmup_s: float = 0.2
    min_samples: int = 100
    min_s: float = 1.0
    max_s: float = 30.0

    def budgeted_percentiles(self) -> dict[str, float]:
        """Map ``"p50"``/``"p95"``/``"p99"`` to the budget in ms, for those set."""
        budgets = {
            "p50": self.p50_ms,
            "p95": self.p95_ms,
            "p99": self.p99_ms,
        }
        return {name: value for name, value in budgets.items() if value is not None}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One declared (or auto-paired) model.

    Paths are absolute. ``torch`` and ``factory`` are alternatives for the Torch
    side; ``weights`` belongs to ``factory``. ``factory``, ``sample_inputs`` and
    ``serving`` are ``module:callable`` references, resolved by
    :func:`resolve_reference` when a check runs. ``tolerance`` contains per-output
    overrides as ``(output name, Tolerance)`` pairs sorted by name. ``source`` is
    ``"config"`` or ``"auto-paired"``.
    """

    name: str
    onnx: Path | None = None
    torch: Path | None = None
    factory: str | None = None
    weights: Path | None = None
    inputs: tuple[InputSpec, ...] = ()
    sample_inputs: str | None = None
    serving: str | None = None
    tolerance: tuple[tuple[str, Tolerance], ...] = ()
    latency: tuple[LatencyBudget, ...] = ()
    source: str = "config"
    key: str = field(default="", compare=False)

    @property
    def tolerance_overrides(self) -> dict[str, Tolerance]:
        """Per-output tolerance overrides keyed by output name."""
        return dict(self.tolerance)

    @property
    def has_torch(self) -> bool:
        """Whether a Torch side (file or factory) is declared."""
        return self.torch is not None or self.factory is not None


def parse_model_specs(table: Mapping[str, Any], root: Path) -> tuple[ModelSpec, ...]:
    """Parse the ``models`` table of ``[tool.pytest-aiml]`` into model specs.

    ``table`` maps model names to their tables. File paths are relative to
    ``root`` and must exist. Raises ``ConfigError`` naming the dotted key
    (``models.<name>.<key>``) on the first invalid value. The result is sorted by
    model name so that generated items do not depend on table order.
    """
    if not isinstance(table, Mapping):
        raise ConfigError("models", f"expected a table of models, got {_type_name(table)}",
                          "write one [tool.pytest-aiml.models.<name>] table per model")
    specs = [_parse_model(name, table[name], root) for name in sorted(table)]
    return tuple(specs)


def pair_artifacts(root: Path, repo_files: Iterable[Path]) -> tuple[ModelSpec, ...]:
    """Pair each ``.pt``/``.pt2`` file with a ``.onnx`` file of the same stem and folder.

    ``repo_files`` are paths (absolute, or relative to ``root``) of the files that
    repository discovery found. The content is not read here, so a ``.pt`` that
    turns out to be a plain state dict fails when the parity check loads it. When
    both ``model.pt`` and ``model.pt2`` exist beside ``model.onnx``, the ``.pt2``
    (a ``torch.export`` program) is preferred. Models are named by their path
    relative to ``root`` without suffix (``models/churn``) and have no declared
    inputs, so inputs come from the ONNX signature.
    """
    by_folder_stem: dict[tuple[Path, str], dict[str, Path]] = {}
    for raw in repo_files:
        path = raw if raw.is_absolute() else root / raw
        suffix = path.suffix.lower()
        if suffix not in (".onnx", *TORCH_SUFFIXES):
            continue
        slot = by_folder_stem.setdefault((path.parent, path.stem), {})
        slot[suffix] = path

    pairs = []
    for (folder, stem), found in sorted(by_folder_stem.items()):
        onnx_path = found.get(".onnx")
        torch_path = found.get(".pt2") or found.get(".pt")
        if onnx_path is None or torch_path is None:
            continue
        name = _relative_posix(folder / stem, root)
        pairs.append(
            ModelSpec(
                name=name,
                onnx=onnx_path,
                torch=torch_path,
                source="auto-paired",
                key=f"models.{name}",
            )
        )
    return tuple(pairs)


def resolve_reference(ref: str, root: Path, key: str) -> Callable[..., Any]:
    """Import ``module:callable`` from the repository at ``root`` and return the callable.

    ``root`` is put at the front of ``sys.path`` for the import only, so the
    repository's own modules win over installed ones of the same name. A dotted
    attribute path after the colon (``pkg.mod:Class.build``) is followed. Raises
    ``ConfigError`` naming ``key`` and ``ref`` when the module cannot be imported,
    the attribute is missing or it is not callable.
    """
    module_name, _, attribute_path = ref.partition(":")
    if not module_name or not attribute_path:
        raise ConfigError(key, f"invalid reference {ref!r}",
                          "write it as 'module:callable', for example 'churn.model:build'")

    root_entry = str(root)
    sys.path.insert(0, root_entry)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(key, f"cannot import module {module_name!r} of {ref!r}: {exc}",
                          f"make {module_name!r} importable from {root}") from exc
    except Exception as exc:  # the module is repository code and may raise anything on import
        raise ConfigError(key, f"importing module {module_name!r} of {ref!r} raised "
                               f"{type(exc).__name__}: {exc}",
                          "fix the error in that module") from exc
    finally:
        # Remove only our own entry: the import may have appended others.
        try:
            sys.path.remove(root_entry)
        except ValueError:
            pass

    target: Any = module
    for part in attribute_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise ConfigError(key, f"{module_name!r} has no attribute {attribute_path!r} "
                                   f"(reference {ref!r})",
                              "check the spelling after the colon") from exc
    if not callable(target):
        raise ConfigError(key, f"{ref!r} is a {_type_name(target)}, not a callable",
                          "point the reference at a function or class")
    return target


def _parse_model(name: str, raw: Any, root: Path) -> ModelSpec:
    key = f"models.{name}"
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"expected a table, got {_type_name(raw)}",
                          f"write [tool.pytest-aiml.models.{name}] with keys like onnx = '...'")
    _reject_unknown_keys(raw, _MODEL_KEYS, key)

    onnx = _optional_path(raw, "onnx", key, root, suffixes=(".onnx",))
    torch_file = _optional_path(raw, "torch", key, root, suffixes=TORCH_SUFFIXES)
    factory = _optional_reference(raw, "factory", key)
    weights = _optional_path(raw, "weights", key, root, suffixes=None)
    _check_model_sources(key, onnx, torch_file, factory, weights)

    return ModelSpec(
        name=name,
        onnx=onnx,
        torch=torch_file,
        factory=factory,
        weights=weights,
        inputs=_parse_inputs(raw.get("inputs", []), f"{key}.inputs"),
        sample_inputs=_optional_reference(raw, "sample_inputs", key),
        serving=_optional_reference(raw, "serving", key),
        tolerance=_parse_tolerances(raw.get("tolerance", {}), f"{key}.tolerance"),
        latency=_parse_latency(raw.get("latency", []), f"{key}.latency"),
        source="config",
        key=key,
    )


def _check_model_sources(
    key: str,
    onnx: Path | None,
    torch_file: Path | None,
    factory: str | None,
    weights: Path | None,
) -> None:
    if torch_file is not None and factory is not None:
        raise ConfigError(f"{key}.factory", "both 'torch' and 'factory' are set",
                          "keep one: 'torch' for a TorchScript/torch.export file, "
                          "'factory' plus 'weights' for a state dict")
    if weights is not None and factory is None:
        raise ConfigError(f"{key}.weights", "'weights' is set without 'factory'",
                          "add factory = 'module:callable' that builds the nn.Module")
    if onnx is None and torch_file is None and factory is None:
        raise ConfigError(key, "no model declared",
                          "set 'onnx', 'torch' or 'factory' (with 'weights')")


def _parse_inputs(raw: Any, key: str) -> tuple[InputSpec, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigError(key, f"expected an array of input tables, got {_type_name(raw)}",
                          "write inputs = [{ name = 'x', dtype = 'float32', shape = ['batch', 8] }]")
    specs = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        spec = _parse_input(entry, f"{key}[{i}]")
        if spec.name in seen:
            raise ConfigError(f"{key}[{i}].name", f"duplicate input name {spec.name!r}",
                              "give every input its own name")
        seen.add(spec.name)
        specs.append(spec)
    return tuple(specs)


def _parse_input(raw: Any, key: str) -> InputSpec:
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"expected a table, got {_type_name(raw)}",
                          "write { name = 'x', dtype = 'float32', shape = ['batch', 8] }")
    _reject_unknown_keys(raw, _INPUT_KEYS, key)
    for required in ("name", "dtype", "shape"):
        if required not in raw:
            raise ConfigError(f"{key}.{required}", "missing", f"add {required} = ...")

    name = raw["name"]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{key}.name", f"expected a non-empty string, got {name!r}",
                          "use the ONNX input name")
    dtype = raw["dtype"]
    if dtype not in DTYPE_NAMES:
        raise ConfigError(f"{key}.dtype", f"unknown dtype {dtype!r}",
                          f"use one of {', '.join(DTYPE_NAMES)}")

    shape = _parse_shape(raw["shape"], f"{key}.shape")
    low = _optional_number(raw, "min", key)
    high = _optional_number(raw, "max", key)
    if low is not None and high is not None and low > high:
        raise ConfigError(f"{key}.min", f"min {low} is greater than max {high}",
                          "swap the two values")
    return InputSpec(name=name, dtype=dtype, shape=shape, min=low, max=high)


def _parse_shape(raw: Any, key: str) -> tuple[int | str, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigError(key, f"expected an array, got {_type_name(raw)}",
                          "write shape = ['batch', 8]: a string names a dynamic axis")
    dims: list[int | str] = []
    for i, dim in enumerate(raw):
        if isinstance(dim, bool) or not isinstance(dim, (int, str)):
            raise ConfigError(f"{key}[{i}]", f"expected an integer or an axis name, got {dim!r}",
                              "use a positive integer for a fixed dimension, a name for a dynamic one")
        if isinstance(dim, int) and dim < 1:
            raise ConfigError(f"{key}[{i}]", f"dimension {dim} is not positive",
                              "use a positive integer, or a name for a dynamic axis")
        if isinstance(dim, str) and not dim:
            raise ConfigError(f"{key}[{i}]", "empty axis name", "name the axis, for example 'batch'")
        dims.append(dim)
    return tuple(dims)


def _parse_tolerances(raw: Any, key: str) -> tuple[tuple[str, Tolerance], ...]:
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"expected a table of outputs, got {_type_name(raw)}",
                          "write tolerance = { logits = { rtol = 1e-3, atol = 1e-5 } }")
    pairs = []
    for output in sorted(raw):
        entry = raw[output]
        entry_key = f"{key}.{output}"
        if not isinstance(entry, Mapping):
            raise ConfigError(entry_key, f"expected a table, got {_type_name(entry)}",
                              "write { rtol = 1e-3, atol = 1e-5 }")
        _reject_unknown_keys(entry, _TOLERANCE_KEYS, entry_key)
        missing = [name for name in _TOLERANCE_KEYS if name not in entry]
        if missing:
            raise ConfigError(f"{entry_key}.{missing[0]}", "missing",
                              "set both rtol and atol for an output override")
        rtol = _non_negative_number(entry["rtol"], f"{entry_key}.rtol")
        atol = _non_negative_number(entry["atol"], f"{entry_key}.atol")
        pairs.append((output, Tolerance(rtol=rtol, atol=atol)))
    return tuple(pairs)


def _parse_latency(raw: Any, key: str) -> tuple[LatencyBudget, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigError(key, f"expected an array of budget tables, got {_type_name(raw)}",
                          "write latency = [{ device = 'cpu', batch = 1, p95_ms = 20.0 }]")
    return tuple(_parse_budget(entry, f"{key}[{i}]") for i, entry in enumerate(raw))


def _parse_budget(raw: Any, key: str) -> LatencyBudget:
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"expected a table, got {_type_name(raw)}",
                          "write { device = 'cpu', batch = 1, p95_ms = 20.0 }")
    _reject_unknown_keys(raw, _LATENCY_KEYS, key)

    device = raw.get("device")
    if device not in LATENCY_DEVICES:
        raise ConfigError(f"{key}.device", f"expected one of {', '.join(LATENCY_DEVICES)}, "
                                           f"got {device!r}", "set device = 'cpu' or 'cuda'")
    runtime = raw.get("runtime")
    if runtime is not None and runtime not in LATENCY_RUNTIMES:
        raise ConfigError(f"{key}.runtime", f"expected one of {', '.join(LATENCY_RUNTIMES)}, "
                                            f"got {runtime!r}",
                          "set runtime = 'onnx' or 'torch', or leave it out")

    percentiles = {name: _optional_number(raw, name, key) for name in PERCENTILE_KEYS}
    for name, value in percentiles.items():
        if value is not None and value <= 0:
            raise ConfigError(f"{key}.{name}", f"budget {value} ms is not positive",
                              "give the budget in milliseconds, above 0")
    if all(value is None for value in percentiles.values()):
        raise ConfigError(key, "no percentile budget set",
                          f"set at least one of {', '.join(PERCENTILE_KEYS)}")

    plan: dict[str, Any] = {}
    for name in ("warmup_calls", "min_samples"):
        if name in raw:
            plan[name] = _positive_int(raw[name], f"{key}.{name}", allow_zero=name == "warmup_calls")
    for name in ("warmup_s", "min_s", "max_s"):
        if name in raw:
            plan[name] = _non_negative_number(raw[name], f"{key}.{name}")
    if plan.get("max_s", 1.0) <= 0:
        raise ConfigError(f"{key}.max_s", "max_s must be above 0", "give a time limit in seconds")

    return LatencyBudget(
        device=device,
        batch=_positive_int(raw.get("batch", 1), f"{key}.batch"),
        runtime=runtime,
        **percentiles,
        **plan,
    )


def _optional_path(
    raw: Mapping[str, Any],
    name: str,
    key: str,
    root: Path,
    suffixes: tuple[str, ...] | None,
) -> Path | None:
    if name not in raw:
        return None
    value = raw[name]
    full_key = f"{key}.{name}"
    if not isinstance(value, str) or not value:
        raise ConfigError(full_key, f"expected a path string, got {value!r}",
                          "give the path relative to the repository root")
    if suffixes is not None and not value.lower().endswith(suffixes):
        raise ConfigError(full_key, f"{value!r} does not end in {' or '.join(suffixes)}",
                          "point the key at the model file of that format")
    path = (root / value).resolve()
    if not path.is_file():
        raise ConfigError(full_key, f"file not found: {value!r} (looked for {path})",
                          "fix the path (relative to the repository root) or build the file first")
    return path


def _optional_reference(raw: Mapping[str, Any], name: str, key: str) -> str | None:
    if name not in raw:
        return None
    value = raw[name]
    full_key = f"{key}.{name}"
    if not isinstance(value, str):
        raise ConfigError(full_key, f"expected a 'module:callable' string, got {value!r}",
                          "write it as 'module:callable', for example 'churn.model:build'")
    module_name, colon, attribute = value.partition(":")
    if not colon or not module_name or not attribute:
        raise ConfigError(full_key, f"invalid reference {value!r}",
                          "write it as 'module:callable', for example 'churn.model:build'")
    return value


def _optional_number(raw: Mapping[str, Any], name: str, key: str) -> float | None:
    if name not in raw:
        return None
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key}.{name}", f"expected a finite number, got {value!r}",
                          "write a number such as 3.0")
    return float(value)


def _non_negative_number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, f"expected a finite number, got {value!r}", "write a number such as 1e-3")
    if value < 0:
        raise ConfigError(key, f"{value} is negative", "use a value of 0 or more")
    return float(value)


def _positive_int(value: Any, key: str, *, allow_zero: bool = False) -> int:
    lowest = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise ConfigError(key, f"expected an integer of at least {lowest}, got {value!r}",
                          f"write a whole number, {lowest} or more")
    return value


def _reject_unknown_keys(raw: Mapping[str, Any], allowed: Sequence[str], key: str) -> None:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key {unknown[0]!r}",
                          f"allowed keys: {', '.join(allowed)}")


def _relative_posix(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _type_name(value: Any) -> str:
    return type(value).__name__
