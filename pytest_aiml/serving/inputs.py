"""Generated model inputs: from the ONNX signature or from declared :class:`InputSpec`.

Parity is only meaningful on inputs that exercise what an export can get wrong.
So :func:`generate_input_groups` returns at least two :class:`InputGroup` values
and gives every dynamic axis at least two sizes. One of them is above 1 and
differs from the size the model was exported with, so that a batch size baked in
at export time shows. Default sizes are 1 and 3 for a leading axis (the batch) and 16 and
23 for other dynamic axes (sequence length, image size), because 1 is too small
for many convolution or pooling stacks. Axes with the same name share one size in
a group, as ONNX shape inference expects.

Values are drawn with ``numpy.random.default_rng(seed)`` and lie within the
input's ``min``/``max``:

- floats: uniform in ``[min, max]`` when both are set, else standard normal values
  clipped to whichever bound is set;
- integers: uniform in ``[min, max]``, by default ``[0, 1]`` so that any index or
  embedding input is valid (declare ``min``/``max`` for a wider range);
- bool: True or False with equal probability.

Nothing here imports torch or onnxruntime; :func:`signature_from_session` reads an
onnxruntime session passed in by the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_aiml.serving.spec import InputSpec

__all__ = [
    "ONNX_ELEMENT_TYPES",
    "InputGroup",
    "check_signature",
    "dynamic_axis_sizes",
    "generate_input_groups",
    "groups_from_samples",
    "make_batch",
    "signature_from_session",
]

logger = logging.getLogger("pytest_aiml.serving")

# onnxruntime's ``NodeArg.type`` strings mapped to numpy / torch dtype names.
ONNX_ELEMENT_TYPES: Mapping[str, str] = {
    "tensor(double)": "float64",
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(bfloat16)": "bfloat16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}

LEADING_AXIS_SIZES = (1, 3)
INNER_AXIS_SIZES = (16, 23)
MIN_GROUPS = 2
DEFAULT_INT_RANGE = (0, 1)


@dataclass(frozen=True, slots=True, eq=False)
class InputGroup:
    """One set of input arrays fed to both models, in model input order."""

    label: str
    arrays: tuple[tuple[str, np.ndarray], ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Input names in model input order."""
        return tuple(name for name, _ in self.arrays)

    def feed(self) -> dict[str, np.ndarray]:
        """Return the arrays keyed by input name, as ``InferenceSession.run`` takes them."""
        return dict(self.arrays)

    def shapes(self) -> dict[str, list[int]]:
        """Return each input's shape as a list of ints."""
        return {name: [int(d) for d in array.shape] for name, array in self.arrays}

    def describe(self) -> str:
        """Return the group label with its input shapes, for failure messages."""
        shapes = ", ".join(f"{name}{list(array.shape)}" for name, array in self.arrays)
        return f"{self.label} ({shapes})"


def signature_from_session(session: Any) -> tuple[InputSpec, ...]:
    """Read the input signature of an onnxruntime ``InferenceSession``.

    A symbolic dimension keeps its name. A dimension without a name (``None``) is
    called ``"batch"`` when it is the leading axis and ``"<input>.dim<i>"``
    otherwise. Raises ``ValueError`` naming the input for an element type that
    cannot be generated (strings, sequences, maps).
    """
    specs = []
    for node in session.get_inputs():
        dtype = ONNX_ELEMENT_TYPES.get(node.type)
        if dtype is None:
            raise ValueError(
                f"ONNX input {node.name!r} has type {node.type}, which pytest-aiml cannot "
                "generate; declare sample_inputs for this model"
            )
        shape: list[int | str] = []
        for position, dim in enumerate(node.shape):
            if isinstance(dim, int) and dim > 0:
                shape.append(dim)
            elif isinstance(dim, str) and dim:
                shape.append(dim)
            else:
                # NOTE: naming every unnamed leading axis "batch" assumes they are
                # all the batch axis, which holds for the usual exports.
                shape.append("batch" if position == 0 else f"{node.name}.dim{position}")
        specs.append(InputSpec(name=node.name, dtype=dtype, shape=tuple(shape)))
    return tuple(specs)


def check_signature(declared: Sequence[InputSpec], signature: Sequence[InputSpec]) -> tuple[str, ...]:
    """Compare declared inputs with the ONNX signature and describe each disagreement.

    A declared dynamic axis that the ONNX file fixes is reported, since that is the
    usual sign of a batch size baked in at export. Returns an empty tuple when
    they agree.
    """
    problems = []
    by_name = {spec.name: spec for spec in signature}
    declared_names = [spec.name for spec in declared]
    for spec in declared:
        onnx_spec = by_name.get(spec.name)
        if onnx_spec is None:
            problems.append(f"declared input {spec.name!r} is not an input of the ONNX model "
                            f"(its inputs: {', '.join(by_name) or 'none'})")
            continue
        if onnx_spec.dtype != spec.dtype:
            problems.append(f"input {spec.name!r} is declared {spec.dtype} but the ONNX model "
                            f"takes {onnx_spec.dtype}")
        if len(onnx_spec.shape) != len(spec.shape):
            problems.append(f"input {spec.name!r} is declared with rank {len(spec.shape)} but the "
                            f"ONNX model takes rank {len(onnx_spec.shape)}")
            continue
        for axis, (want, have) in enumerate(zip(spec.shape, onnx_spec.shape)):
            if isinstance(want, str) and isinstance(have, int):
                problems.append(f"input {spec.name!r} axis {axis} is declared dynamic ({want!r}) "
                                f"but the ONNX model fixes it to {have}: re-export with this "
                                "axis marked dynamic")
            elif isinstance(want, int) and isinstance(have, int) and want != have:
                problems.append(f"input {spec.name!r} axis {axis} is declared {want} but the ONNX "
                                f"model takes {have}")
    missing = [spec.name for spec in signature if spec.name not in declared_names]
    if declared and missing:
        problems.append(f"ONNX inputs not declared: {', '.join(missing)}")
    return tuple(problems)


def dynamic_axis_sizes(
    inputs: Sequence[InputSpec],
    *,
    export_sizes: Mapping[str, int] | None = None,
    axis_sizes: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, tuple[int, ...]]:
    """Choose the sizes each named dynamic axis takes across input groups.

    ``export_sizes`` maps an axis name to the size used at export, when known.
    ``axis_sizes`` overrides the defaults for named axes. Raises ``ValueError``
    when an override has fewer than two distinct sizes or none above 1 that
    differs from the export size.
    """
    export_sizes = export_sizes or {}
    axis_sizes = axis_sizes or {}
    chosen: dict[str, tuple[int, ...]] = {}
    for spec in inputs:
        for position, dim in enumerate(spec.shape):
            if not isinstance(dim, str) or dim in chosen:
                continue
            exported = export_sizes.get(dim)
            if dim in axis_sizes:
                sizes = tuple(int(size) for size in axis_sizes[dim])
                _check_override(dim, sizes, exported)
            else:
                defaults = LEADING_AXIS_SIZES if position == 0 else INNER_AXIS_SIZES
                sizes = _avoid_export_size(defaults, exported)
            chosen[dim] = sizes
    return chosen


def generate_input_groups(
    inputs: Sequence[InputSpec],
    *,
    seed: int = 0,
    export_sizes: Mapping[str, int] | None = None,
    axis_sizes: Mapping[str, Sequence[int]] | None = None,
) -> tuple[InputGroup, ...]:
    """Generate at least two input groups for ``inputs`` with a fixed seed.

    Group ``i`` gives each dynamic axis its ``i``-th size from
    :func:`dynamic_axis_sizes` (cycling when an axis has fewer sizes than there
    are groups). The same arguments always produce the same arrays.
    """
    if not inputs:
        raise ValueError("no inputs to generate: the model declares none and has no ONNX signature")
    sizes = dynamic_axis_sizes(inputs, export_sizes=export_sizes, axis_sizes=axis_sizes)
    group_count = max([MIN_GROUPS, *(len(values) for values in sizes.values())])
    logger.debug("generating %d input groups with seed %d and dynamic axis sizes %s",
                 group_count, seed, sizes)
    rng = np.random.default_rng(seed)

    groups = []
    for index in range(group_count):
        axis_values = {name: values[index % len(values)] for name, values in sizes.items()}
        arrays = tuple(
            (spec.name, _random_array(spec, _concrete_shape(spec, axis_values), rng))
            for spec in inputs
        )
        groups.append(InputGroup(label=f"group {index + 1}", arrays=arrays))
    return tuple(groups)


def make_batch(inputs: Sequence[InputSpec], batch: int, *, seed: int = 0, label: str = "") -> InputGroup:
    """Generate one input group whose leading dynamic axes have size ``batch``.

    Other dynamic axes take their first default size. Used for latency and for the
    valid baseline of the input probes.
    """
    axis_values: dict[str, int] = {}
    for spec in inputs:
        for position, dim in enumerate(spec.shape):
            if isinstance(dim, str) and dim not in axis_values:
                axis_values[dim] = batch if position == 0 else INNER_AXIS_SIZES[0]
    rng = np.random.default_rng(seed)
    arrays = tuple(
        (spec.name, _random_array(spec, _concrete_shape(spec, axis_values), rng)) for spec in inputs
    )
    return InputGroup(label=label or f"batch {batch}", arrays=arrays)


def groups_from_samples(samples: Any, input_names: Sequence[str], *, source: str) -> tuple[InputGroup, ...]:
    """Convert what a ``sample_inputs`` callable returned into input groups.

    ``samples`` is an iterable of batches. A batch is a mapping of input name to
    array, a tuple or list of arrays in input order, or a single array when the
    model has one input. Arrays may be numpy arrays, Torch tensors (moved to CPU)
    or nested lists. ``source`` names the callable in error messages.
    """
    groups = []
    for index, batch in enumerate(samples):
        arrays = _batch_arrays(batch, input_names, source, index)
        groups.append(InputGroup(label=f"sample {index + 1}", arrays=arrays))
    if not groups:
        raise ValueError(f"{source} returned no batches; return at least one input batch")
    return tuple(groups)


def _batch_arrays(batch: Any, names: Sequence[str], source: str, index: int) -> tuple[tuple[str, np.ndarray], ...]:
    if isinstance(batch, Mapping):
        missing = [name for name in names if name not in batch]
        if missing:
            raise ValueError(f"batch {index} from {source} lacks inputs {missing}; "
                             f"its keys are {sorted(batch)}")
        return tuple((name, _to_numpy(batch[name])) for name in names)
    if isinstance(batch, (tuple, list)) and len(names) != 1:
        if len(batch) != len(names):
            raise ValueError(f"batch {index} from {source} has {len(batch)} arrays, the model "
                             f"takes {len(names)} ({', '.join(names)})")
        return tuple((name, _to_numpy(value)) for name, value in zip(names, batch))
    if len(names) != 1:
        raise ValueError(f"batch {index} from {source} is one array, the model takes "
                         f"{len(names)} inputs; return a dict keyed by input name")
    return ((names[0], _to_numpy(batch)),)


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _avoid_export_size(defaults: tuple[int, ...], exported: int | None) -> tuple[int, ...]:
    if exported is None:
        return defaults
    sizes = []
    for size in defaults:
        if size > 1 and size == exported:
            size += 2
        sizes.append(size)
    return tuple(sizes)


def _check_override(name: str, sizes: tuple[int, ...], exported: int | None) -> None:
    if len(set(sizes)) < 2:
        raise ValueError(f"axis {name!r} needs at least two distinct sizes, got {list(sizes)}")
    if any(size < 1 for size in sizes):
        raise ValueError(f"axis {name!r} sizes must be positive, got {list(sizes)}")
    if not any(size > 1 and size != exported for size in sizes):
        raise ValueError(f"axis {name!r} needs a size above 1 that differs from the export size "
                         f"{exported}, got {list(sizes)}")


def _concrete_shape(spec: InputSpec, axis_values: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(dim if isinstance(dim, int) else axis_values[dim] for dim in spec.shape)


def _random_array(spec: InputSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if spec.dtype == "bfloat16":
        raise ValueError(f"input {spec.name!r} is bfloat16, which numpy cannot hold; "
                         "declare sample_inputs for this model")
    if spec.dtype == "bool":
        return rng.random(shape) < 0.5
    if spec.dtype.startswith(("int", "uint")):
        low = int(spec.min) if spec.min is not None else DEFAULT_INT_RANGE[0]
        high = int(spec.max) if spec.max is not None else max(low, DEFAULT_INT_RANGE[1])
        return rng.integers(low, high, size=shape, endpoint=True).astype(spec.dtype)
    return _random_floats(spec, shape, rng).astype(spec.dtype)


def _random_floats(spec: InputSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if spec.min is not None and spec.max is not None:
        return rng.uniform(spec.min, spec.max, size=shape)
    values = rng.standard_normal(shape)
    return np.clip(values, spec.min, spec.max) if (spec.min is not None or spec.max is not None) else values
