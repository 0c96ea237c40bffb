"""Parity between a Torch model and its ONNX export (training-serving skew).

:func:`check_parity` runs both models on the same :class:`InputGroup` values and
compares every ONNX output with the Torch output of the same name: shape and dtype
must match, and the values must satisfy ``|onnx - torch| <= atol + rtol * |torch|``
(see :mod:`pytest_aiml.serving.tolerance` for the defaults per dtype). When only
the dtypes differ, the values are still compared in float64 so that the failure
shows how far apart they are.

:func:`check_model_parity` does the whole job for a :class:`ModelSpec`: it loads
both models, generates the input groups (from the declared inputs, else the ONNX
signature, plus any ``sample_inputs`` batches) and checks the declared inputs
against the ONNX signature.

``ParityResult.to_dict()`` returns builtins only::

    {
      "model": "churn",
      "passed": False,
      "providers": ["CPUExecutionProvider"],
      "signature_problems": ["input 'features' axis 0 is declared dynamic ..."],
      "groups": [
        {"label": "group 1", "input_shapes": {"features": [1, 8]}, "error": None,
         "passed": True,
         "outputs": [
           {"name": "logits", "passed": True, "problems": [],
            "torch_shape": [1, 3], "onnx_shape": [1, 3],
            "torch_dtype": "float32", "onnx_dtype": "float32",
            "comparison": {<Comparison.to_dict()>} or None}]}],
      "outputs": {"logits": {"passed": ..., "max_abs_error": ..., "max_rel_error": ...,
                              "rtol_needed": ..., "atol_needed": ...}},
    }

``outputs`` holds, per output name, the worst figures over all groups.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_aiml.serving.inputs import (
    InputGroup,
    check_signature,
    generate_input_groups,
    groups_from_samples,
    signature_from_session,
)
from pytest_aiml.serving.runtime import OutputArray, onnx_output_names, run_onnx, run_torch
from pytest_aiml.serving.spec import ModelSpec, Tolerance, resolve_reference
from pytest_aiml.serving.tolerance import Comparison, compare_outputs, tolerance_for

__all__ = [
    "GroupParity",
    "OutputParity",
    "ParityResult",
    "check_model_parity",
    "check_parity",
]

logger = logging.getLogger("pytest_aiml.serving")


@dataclass(frozen=True, slots=True)
class OutputParity:
    """The comparison of one output in one input group.

    ``comparison`` is ``None`` when the shapes differ or the output is missing on
    one side. ``problems`` lists shape, dtype and missing-output disagreements.
    """

    name: str
    passed: bool
    problems: tuple[str, ...]
    torch_shape: tuple[int, ...] | None
    onnx_shape: tuple[int, ...] | None
    torch_dtype: str | None
    onnx_dtype: str | None
    comparison: Comparison | None

    def to_dict(self) -> dict[str, Any]:
        """Return the output comparison as builtins."""
        return {
            "name": self.name,
            "passed": self.passed,
            "problems": list(self.problems),
            "torch_shape": _shape_list(self.torch_shape),
            "onnx_shape": _shape_list(self.onnx_shape),
            "torch_dtype": self.torch_dtype,
            "onnx_dtype": self.onnx_dtype,
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class GroupParity:
    """The outputs of one input group, or the error that stopped a model running on it."""

    label: str
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...]
    outputs: tuple[OutputParity, ...]
    error: str | None = None

    @property
    def passed(self) -> bool:
        """Whether both models ran and every output matched."""
        return self.error is None and all(output.passed for output in self.outputs)

    def describe_inputs(self) -> str:
        """Return the label with the input shapes, such as ``group 2 (x[3, 8])``."""
        shapes = ", ".join(f"{name}{list(shape)}" for name, shape in self.input_shapes)
        return f"{self.label} ({shapes})"

    def to_dict(self) -> dict[str, Any]:
        """Return the group as builtins."""
        return {
            "label": self.label,
            "input_shapes": {name: list(shape) for name, shape in self.input_shapes},
            "error": self.error,
            "passed": self.passed,
            "outputs": [output.to_dict() for output in self.outputs],
        }


@dataclass(frozen=True, slots=True)
class ParityResult:
    """Parity of one model over all input groups."""

    model: str
    providers: tuple[str, ...]
    groups: tuple[GroupParity, ...]
    signature_problems: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Whether the signature agreed and every group passed."""
        return not self.signature_problems and bool(self.groups) and all(g.passed for g in self.groups)

    def worst_by_output(self) -> dict[str, dict[str, Any]]:
        """Return, per output name, the worst figures over all groups (builtins)."""
        summary: dict[str, dict[str, Any]] = {}
        for group in self.groups:
            for output in group.outputs:
                entry = summary.setdefault(output.name, {
                    "passed": True,
                    "max_abs_error": 0.0,
                    "max_rel_error": 0.0,
                    "rtol_needed": 0.0,
                    "atol_needed": 0.0,
                    "worst_group": None,
                })
                entry["passed"] = entry["passed"] and output.passed
                comparison = output.comparison
                if comparison is None:
                    continue
                if comparison.max_abs_error > entry["max_abs_error"]:
                    entry["worst_group"] = group.label
                entry["max_abs_error"] = max(entry["max_abs_error"], comparison.max_abs_error)
                entry["max_rel_error"] = max(entry["max_rel_error"], comparison.max_rel_error)
                entry["rtol_needed"] = max(entry["rtol_needed"], comparison.rtol_needed)
                entry["atol_needed"] = max(entry["atol_needed"], comparison.atol_needed)
        return summary

    def failure_text(self) -> str:
        """Return a multi-line description of every failure, empty when parity passed."""
        if self.passed:
            return ""
        lines = [f"ONNX output differs from Torch for model {self.model!r} "
                 f"(providers: {', '.join(self.providers) or 'none'})"]
        lines.extend(f"  signature: {problem}" for problem in self.signature_problems)
        if not self.groups:
            lines.append("  no input groups were run")
        for group in self.groups:
            lines.extend(_group_failure_lines(group))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as builtins (see the module docstring for the layout)."""
        return {
            "model": self.model,
            "passed": self.passed,
            "providers": list(self.providers),
            "signature_problems": list(self.signature_problems),
            "groups": [group.to_dict() for group in self.groups],
            "outputs": self.worst_by_output(),
        }


def check_parity(
    torch_model: Any,
    onnx_session: Any,
    input_groups: Sequence[InputGroup],
    *,
    tolerances: Mapping[str, Tolerance] | None = None,
    model_name: str = "model",
    signature_problems: Sequence[str] = (),
    device: str = "cpu",
) -> ParityResult:
    """Run ``torch_model`` and ``onnx_session`` on each input group and compare outputs.

    ``tolerances`` are per-output overrides of the dtype defaults. The Torch model
    runs on ``device``; the ONNX session on whatever providers it was opened with.
    A model that raises on a group is recorded as that group's error, and the
    other groups still run.
    """
    overrides = dict(tolerances or {})
    output_names = onnx_output_names(onnx_session)
    unknown = sorted(set(overrides) - set(output_names))
    problems = list(signature_problems)
    if unknown:
        problems.append(f"tolerance set for unknown outputs {unknown}; the ONNX outputs are "
                        f"{list(output_names)}")

    groups = tuple(
        _check_group(torch_model, onnx_session, group, output_names, overrides, device)
        for group in input_groups
    )
    result = ParityResult(
        model=model_name,
        providers=tuple(onnx_session.get_providers()),
        groups=groups,
        signature_problems=tuple(problems),
    )
    logger.debug("parity for %s: passed=%s over %d groups", model_name, result.passed, len(groups))
    return result


def check_model_parity(
    spec: ModelSpec,
    root: Path,
    *,
    seed: int = 0,
    export_sizes: Mapping[str, int] | None = None,
    axis_sizes: Mapping[str, Sequence[int]] | None = None,
    torch_model: Any = None,
    onnx_session: Any = None,
    extra_samples: Any = None,
) -> ParityResult:
    """Load both sides of ``spec`` and check their parity on generated inputs.

    ``torch_model`` and ``onnx_session`` replace the loaded models when given (a
    loader supplied through an extension hook). Inputs come from
    ``spec.inputs`` when declared, else from the ONNX signature, and batches from
    ``spec.sample_inputs`` are added as further groups. Raises ``ValueError`` when
    the spec lacks an ONNX or a Torch side, ``ModelLoadError`` when loading fails
    and ``ConfigError`` when a reference cannot be imported.
    """
    # Imported here so that parity.py does not pull in the loaders' torch imports
    # for callers that pass ready-made models.
    from pytest_aiml.serving.loading import load_onnx_session, load_torch_model

    if spec.onnx is None or not spec.has_torch:
        raise ValueError(f"model {spec.name!r} needs both 'onnx' and 'torch' (or 'factory') "
                         "for a parity check")
    session = onnx_session if onnx_session is not None else load_onnx_session(spec.onnx)
    model = torch_model if torch_model is not None else load_torch_model(spec, root)

    signature = signature_from_session(session)
    declared = spec.inputs
    problems = check_signature(declared, signature) if declared else ()
    groups = list(generate_input_groups(declared or signature, seed=seed,
                                        export_sizes=export_sizes, axis_sizes=axis_sizes))
    if spec.sample_inputs is not None:
        key = f"{spec.key or 'models.' + spec.name}.sample_inputs"
        sample_function = resolve_reference(spec.sample_inputs, root, key)
        names = [node.name for node in session.get_inputs()]
        groups.extend(groups_from_samples(sample_function(), names, source=spec.sample_inputs))
    if extra_samples is not None:
        # Batches a conftest.py supplied through the pytest_aiml_sample_inputs hook.
        names = [node.name for node in session.get_inputs()]
        groups.extend(groups_from_samples(extra_samples, names, source="pytest_aiml_sample_inputs"))

    return check_parity(
        model,
        session,
        groups,
        tolerances=spec.tolerance_overrides,
        model_name=spec.name,
        signature_problems=problems,
    )


def _check_group(
    torch_model: Any,
    onnx_session: Any,
    group: InputGroup,
    output_names: Sequence[str],
    overrides: Mapping[str, Tolerance],
    device: str,
) -> GroupParity:
    input_shapes = tuple((name, tuple(int(d) for d in array.shape)) for name, array in group.arrays)
    try:
        onnx_outputs = run_onnx(onnx_session, group)
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        return GroupParity(group.label, input_shapes, (), f"onnxruntime failed: {_one_line(exc)}")
    try:
        torch_outputs = run_torch(torch_model, group, output_names, device=device)
    except Exception as exc:  # the model is user code and may raise anything
        return GroupParity(group.label, input_shapes, (), f"Torch model failed: {_one_line(exc)}")

    outputs = tuple(
        _compare_output(name, torch_outputs.get(name), onnx_outputs.get(name), overrides)
        for name in output_names
    )
    return GroupParity(group.label, input_shapes, outputs)


def _compare_output(
    name: str,
    torch_output: OutputArray | None,
    onnx_output: OutputArray | None,
    overrides: Mapping[str, Tolerance],
) -> OutputParity:
    if torch_output is None or onnx_output is None:
        side = "Torch" if torch_output is None else "ONNX"
        return OutputParity(name, False, (f"missing from the {side} outputs",),
                            _shape(torch_output), _shape(onnx_output),
                            _dtype(torch_output), _dtype(onnx_output), None)

    problems = []
    if torch_output.values.shape != onnx_output.values.shape:
        problems.append(f"shape differs: ONNX {list(onnx_output.values.shape)}, "
                        f"Torch {list(torch_output.values.shape)}")
    if torch_output.dtype != onnx_output.dtype:
        problems.append(f"dtype differs: ONNX {onnx_output.dtype}, Torch {torch_output.dtype}")

    comparison = None
    if torch_output.values.shape == onnx_output.values.shape:
        # The Torch output is the reference, so its dtype picks the default tolerance.
        tolerance = tolerance_for(name, torch_output.dtype, overrides)
        comparison = compare_outputs(onnx_output.values, torch_output.values, tolerance)

    passed = not problems and comparison is not None and comparison.passed
    return OutputParity(
        name=name,
        passed=passed,
        problems=tuple(problems),
        torch_shape=_shape(torch_output),
        onnx_shape=_shape(onnx_output),
        torch_dtype=torch_output.dtype,
        onnx_dtype=onnx_output.dtype,
        comparison=comparison,
    )


def _group_failure_lines(group: GroupParity) -> list[str]:
    if group.passed:
        return []
    where = group.describe_inputs()
    if group.error is not None:
        return [f"  {where}: {group.error}"]
    lines = []
    for output in group.outputs:
        if output.passed:
            continue
        lines.append(f"  output {output.name!r} in {where}:")
        lines.extend(f"    {problem}" for problem in output.problems)
        if output.comparison is not None:
            lines.extend(f"    {line}" for line in _comparison_lines(output.comparison))
    return lines


def _comparison_lines(comparison: Comparison) -> list[str]:
    tolerance = comparison.tolerance
    lines = [
        f"{comparison.mismatched} of {comparison.total} elements outside "
        f"rtol={tolerance.rtol:g}, atol={tolerance.atol:g}",
        f"max abs error {comparison.max_abs_error:.6g} at {_index_text(comparison.max_abs_index)}; "
        f"max rel error {comparison.max_rel_error:.6g} at {_index_text(comparison.max_rel_index)}",
    ]
    if comparison.nonfinite_mismatched:
        lines.append(f"{comparison.nonfinite_mismatched} NaN/inf values differ in position, "
                     f"first at {_index_text(comparison.first_nonfinite_index)}: no tolerance passes")
    else:
        rtol_text = ("no rtol passes (a reference value is 0)" if math.isinf(comparison.rtol_needed)
                     else f"rtol >= {comparison.rtol_needed:.3g} (at atol={tolerance.atol:g})")
        lines.append(f"would pass with {rtol_text} or atol >= {comparison.atol_needed:.3g} "
                     f"(at rtol={tolerance.rtol:g})")
    return lines


def _index_text(index: tuple[int, ...] | None) -> str:
    return "-" if index is None else str(list(index))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}"


def _shape(output: OutputArray | None) -> tuple[int, ...] | None:
    return None if output is None else tuple(int(d) for d in output.values.shape)


def _dtype(output: OutputArray | None) -> str | None:
    return None if output is None else output.dtype


def _shape_list(shape: tuple[int, ...] | None) -> list[int] | None:
    return None if shape is None else list(shape)
