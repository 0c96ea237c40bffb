"""Declarations of preprocessing functions and the properties to check on them.

A repository declares each function in its own table of ``pyproject.toml``::

    [tool.pytest-aiml.preprocessing."churn.features:standardize"]
    input = { kind = "array", dtype = "float64", shape = ["batch", 4], min = -1e6, max = 1e6 }
    properties = ["deterministic", "finite", "batch_invariant", "no_mutation"]
    output = { shape = "same", dtype = "float64" }
    matches = "churn.serving:standardize"
    tolerance = { rtol = 1e-7, atol = 1e-9 }
    max_examples = 200

:func:`parse_preprocessing_specs` turns the ``preprocessing`` table into frozen
:class:`PreprocessingSpec` objects. Parsing imports nothing (not even NumPy), and
every invalid value raises :class:`~pytest_aiml.engine.errors.ConfigError` with the
dotted key of that value. Importing the named functions is a separate step,
:func:`pytest_aiml.properties.resolve.resolve_function`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.properties.dtypes import SUPPORTED_DTYPES, DtypeInfo, dtype_info
from pytest_aiml.properties.shape_rules import ShapeExpressionError, expression_names

PROPERTY_NAMES: tuple[str, ...] = (
    "deterministic",
    "finite",
    "shape",
    "dtype",
    "batch_invariant",
    "no_mutation",
    "idempotent",
    "monotonic",
    "bounded",
    "matches",
    "inverse",
)
"""Every property a spec may list, in the order the documentation presents them."""

SPEC_KEYS: tuple[str, ...] = (
    "input",
    "properties",
    "output",
    "matches",
    "inverse",
    "tolerance",
    "monotonic",
    "max_examples",
    "deadline",
)
INPUT_KINDS: tuple[str, ...] = ("array", "frame", "scalar", "text")
TEXT_CODECS: tuple[str, ...] = ("ascii", "latin-1", "utf-8")

# Batches of one to ten rows exercise batch-dependent code paths (a single row,
# several rows) while keeping each example cheap. A spec can widen them with `dims`.
DEFAULT_DIMENSION_MIN = 1
DEFAULT_DIMENSION_MAX = 10

# The pandas frame's row count is the dimension named "rows" in output shapes.
FRAME_ROWS_DIMENSION = "rows"


@dataclass(frozen=True, slots=True)
class DimensionBounds:
    """Size range of one named array dimension, both ends inclusive."""

    name: str
    min_size: int = DEFAULT_DIMENSION_MIN
    max_size: int = DEFAULT_DIMENSION_MAX


@dataclass(frozen=True, slots=True)
class ArrayInput:
    """A NumPy array input.

    ``shape`` contains fixed sizes (``4``) and dimension names (``"batch"``). A name
    used twice (``["n", "n"]``) has the same size in both places. ``dims`` gives
    the bounds of every name in ``shape``, in order of first appearance. ``min_value``
    and ``max_value`` bound the finite elements; ``allow_nan`` and ``allow_infinity``
    add NaN and +/-inf on top of that range.
    """

    kind: ClassVar[str] = "array"

    dtype: str
    shape: tuple[int | str, ...]
    dims: tuple[DimensionBounds, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    allow_nan: bool = False
    allow_infinity: bool = False

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(bounds.name for bounds in self.dims)


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column of a pandas frame input.

    ``dtype`` is a NumPy dtype name or ``"str"`` (Python strings in an object
    column). ``nullable`` adds NaN to float columns and ``None`` to string columns.
    """

    name: str
    dtype: str
    min_value: float | None = None
    max_value: float | None = None
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class FrameInput:
    """A pandas ``DataFrame`` input with a ``RangeIndex`` of ``min_rows`` to ``max_rows`` rows."""

    kind: ClassVar[str] = "frame"

    columns: tuple[ColumnSpec, ...]
    min_rows: int = DEFAULT_DIMENSION_MIN
    max_rows: int = DEFAULT_DIMENSION_MAX

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return (FRAME_ROWS_DIMENSION,)


@dataclass(frozen=True, slots=True)
class ScalarInput:
    """A single number: a Python ``float``, ``int`` or ``bool`` for ``float64``,
    ``int64`` and ``bool``, a NumPy scalar for the other dtypes."""

    kind: ClassVar[str] = "scalar"

    dtype: str = "float64"
    min_value: float | None = None
    max_value: float | None = None
    allow_nan: bool = False
    allow_infinity: bool = False

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class TextInput:
    """A Python ``str`` of ``min_size`` to ``max_size`` characters.

    ``alphabet`` lists the allowed characters; ``codec`` limits characters to those
    the codec can encode. At most one of them is set.
    """

    kind: ClassVar[str] = "text"

    min_size: int = 0
    max_size: int | None = None
    alphabet: str | None = None
    codec: str | None = None

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return ()


InputSpec = ArrayInput | FrameInput | ScalarInput | TextInput


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """Expected output of a preprocessing function.

    ``shape`` is ``"same"`` (the input's shape) or a tuple of integers, input
    dimension names and expressions over them (``"features * 2"``). ``dtype`` is
    ``"same"`` or a dtype name. ``min_value`` and ``max_value`` are the range the
    ``bounded`` property checks. ``None`` means not declared.
    """

    shape: Literal["same"] | tuple[int | str, ...] | None = None
    dtype: str | None = None
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True, slots=True)
class Tolerance:
    """Comparison tolerance: ``|candidate - reference| <= atol + rtol * |reference|``."""

    rtol: float = 0.0
    atol: float = 0.0


@dataclass(frozen=True, slots=True)
class PreprocessingSpec:
    """One declared preprocessing function and the properties to check on it.

    ``properties`` lists the property names in declaration order, followed by
    ``matches`` and ``inverse`` when their keys are set and the list omits them.
    ``tolerance`` ``None`` means the per-dtype defaults of
    :func:`pytest_aiml.properties.compare.default_tolerance`. ``max_examples`` and
    ``deadline_ms`` ``None`` mean not declared; ``deadline_ms`` ``False`` means
    ``deadline = false`` (no deadline).
    """

    function: str
    input: InputSpec
    properties: tuple[str, ...]
    output: OutputSpec = field(default_factory=OutputSpec)
    matches: str | None = None
    inverse: str | None = None
    tolerance: Tolerance | None = None
    monotonic: Literal["increasing", "decreasing"] = "increasing"
    max_examples: int | None = None
    deadline_ms: float | Literal[False] | None = None

    @property
    def key(self) -> str:
        """The dotted configuration key of this spec, as error messages show it."""
        return spec_key(self.function)


def spec_key(reference: str) -> str:
    """Return the dotted key of the table that declares ``reference``."""
    return f"preprocessing.{_key_part(reference)}"


def parse_preprocessing_specs(table: Mapping[str, Any]) -> tuple[PreprocessingSpec, ...]:
    """Parse the ``[tool.pytest-aiml.preprocessing]`` table, one spec per function.

    Specs keep the order of the table. Raises
    :class:`~pytest_aiml.engine.errors.ConfigError` on the first invalid key.
    """
    _require_mapping(table, "preprocessing")
    return tuple(parse_preprocessing_spec(reference, value) for reference, value in table.items())


def parse_preprocessing_spec(reference: str, table: Any) -> PreprocessingSpec:
    """Parse the table that declares one function, ``reference`` being its ``module:function`` key."""
    key = spec_key(reference)
    check_reference(reference, key)
    reader = _TableReader(table, key)
    reader.reject_unknown(SPEC_KEYS)

    input_table = reader.values.get("input")
    if input_table is None:
        raise ConfigError(
            reader.child_key("input"),
            "missing",
            'declare the input, e.g. input = { kind = "array", dtype = "float64", shape = ["batch", 4] }',
        )
    input_spec = parse_input_spec(input_table, reader.child_key("input"))

    output_reader = reader.optional_table("output")
    output = _parse_output(output_reader, input_spec) if output_reader else OutputSpec()
    matches = reader.optional_reference("matches")
    inverse = reader.optional_reference("inverse")
    properties = _parse_property_list(reader, matches=matches, inverse=inverse)

    spec = PreprocessingSpec(
        function=reference,
        input=input_spec,
        properties=properties,
        output=output,
        matches=matches,
        inverse=inverse,
        tolerance=_parse_tolerance(reader.optional_table("tolerance")),
        monotonic=reader.optional_string("monotonic", choices=("increasing", "decreasing"))
        or "increasing",
        max_examples=reader.optional_integer("max_examples", minimum=1),
        deadline_ms=_parse_deadline(reader),
    )
    _check_properties_apply(spec, reader)
    return spec


def parse_input_spec(table: Any, key: str) -> InputSpec:
    """Parse an ``input`` table. ``key`` is its dotted key, for error messages."""
    reader = _TableReader(table, key)
    kind = reader.optional_string("kind", choices=INPUT_KINDS)
    if kind is None:
        raise ConfigError(reader.child_key("kind"), "missing", f"set kind to one of: {', '.join(INPUT_KINDS)}")
    if kind == "array":
        return _parse_array_input(reader)
    if kind == "frame":
        return _parse_frame_input(reader)
    if kind == "scalar":
        return _parse_scalar_input(reader)
    return _parse_text_input(reader)


def without_special_values(input_spec: InputSpec) -> InputSpec:
    """Return ``input_spec`` restricted to finite values: no NaN, no infinity, no missing floats.

    The ``finite`` and ``monotonic`` properties draw from this restriction, because
    "finite input gives finite output" makes no claim about NaN input, and NaN has no order.
    """
    if isinstance(input_spec, (ArrayInput, ScalarInput)):
        return replace(input_spec, allow_nan=False, allow_infinity=False)
    if isinstance(input_spec, FrameInput):
        columns = tuple(
            replace(column, nullable=False) if column.dtype != "str" else column for column in input_spec.columns
        )
        return replace(input_spec, columns=columns)
    return input_spec


def check_reference(reference: Any, key: str) -> str:
    """Check that ``reference`` reads ``module.path:function`` and return it."""
    if not isinstance(reference, str):
        raise ConfigError(key, f"expected a string, got {_toml_type(reference)} {reference!r}")
    module, colon, attribute = reference.partition(":")
    parts_valid = bool(colon) and all(
        part.isidentifier() for part in (*module.split("."), *attribute.split("."))
    )
    if not parts_valid:
        raise ConfigError(
            key,
            f"{reference!r} is not a 'module:function' reference",
            'write the dotted module path, a colon and the function name, e.g. "churn.features:standardize"',
        )
    return reference


# --- inputs -----------------------------------------------------------------


def _parse_array_input(reader: _TableReader) -> ArrayInput:
    reader.reject_unknown(("kind", "dtype", "shape", "dims", "min", "max", "allow_nan", "allow_infinity"))
    dtype = _required_dtype(reader)
    shape = _parse_input_shape(reader)
    dims = _parse_dims(reader, shape)
    min_value, max_value = _parse_value_range(reader, dtype)
    allow_nan, allow_infinity = _parse_special_values(reader, dtype)
    return ArrayInput(
        dtype=dtype.name,
        shape=shape,
        dims=dims,
        min_value=min_value,
        max_value=max_value,
        allow_nan=allow_nan,
        allow_infinity=allow_infinity,
    )


def _parse_frame_input(reader: _TableReader) -> FrameInput:
    reader.reject_unknown(("kind", "columns", "rows"))
    columns_reader = reader.optional_table("columns")
    if columns_reader is None or not columns_reader.values:
        raise ConfigError(
            reader.child_key("columns"),
            "missing or empty",
            'declare each column, e.g. columns = { age = { dtype = "float64", min = 0, max = 120 } }',
        )
    columns = tuple(
        _parse_column(name, columns_reader.child(name)) for name in columns_reader.values
    )
    min_rows, max_rows = DEFAULT_DIMENSION_MIN, DEFAULT_DIMENSION_MAX
    rows_reader = reader.optional_table("rows")
    if rows_reader is not None:
        min_rows, max_rows = _parse_size_bounds(rows_reader)
    return FrameInput(columns=columns, min_rows=min_rows, max_rows=max_rows)


def _parse_column(name: str, reader: _TableReader) -> ColumnSpec:
    reader.reject_unknown(("dtype", "min", "max", "nullable"))
    dtype_name = reader.optional_string("dtype")
    if dtype_name == "str":
        if "min" in reader.values or "max" in reader.values:
            bad = "min" if "min" in reader.values else "max"
            raise ConfigError(reader.child_key(bad), "a string column has no value range", f"remove {bad}")
        return ColumnSpec(name=name, dtype="str", nullable=reader.boolean("nullable", default=False))

    dtype = _required_dtype(reader, extra_choices=("str",))
    min_value, max_value = _parse_value_range(reader, dtype)
    nullable = reader.boolean("nullable", default=False)
    if nullable and not dtype.is_float:
        raise ConfigError(
            reader.child_key("nullable"),
            f"a {dtype.name} column cannot hold missing values",
            "use a float dtype, whose missing value is NaN, or set nullable = false",
        )
    return ColumnSpec(name=name, dtype=dtype.name, min_value=min_value, max_value=max_value, nullable=nullable)


def _parse_scalar_input(reader: _TableReader) -> ScalarInput:
    reader.reject_unknown(("kind", "dtype", "min", "max", "allow_nan", "allow_infinity"))
    dtype = _required_dtype(reader, default="float64")
    min_value, max_value = _parse_value_range(reader, dtype)
    allow_nan, allow_infinity = _parse_special_values(reader, dtype)
    return ScalarInput(
        dtype=dtype.name,
        min_value=min_value,
        max_value=max_value,
        allow_nan=allow_nan,
        allow_infinity=allow_infinity,
    )


def _parse_text_input(reader: _TableReader) -> TextInput:
    reader.reject_unknown(("kind", "min_size", "max_size", "alphabet", "codec"))
    min_size = reader.optional_integer("min_size", minimum=0) or 0
    max_size = reader.optional_integer("max_size", minimum=0)
    if max_size is not None and max_size < min_size:
        raise ConfigError(
            reader.child_key("max_size"),
            f"max_size {max_size} is smaller than min_size {min_size}",
            "raise max_size or lower min_size",
        )
    alphabet = reader.optional_string("alphabet")
    if alphabet == "":
        raise ConfigError(reader.child_key("alphabet"), "empty", "list the allowed characters or remove alphabet")
    codec = reader.optional_string("codec", choices=TEXT_CODECS)
    if alphabet is not None and codec is not None:
        raise ConfigError(reader.child_key("codec"), "alphabet and codec are both set", "keep only one of them")
    return TextInput(min_size=min_size, max_size=max_size, alphabet=alphabet, codec=codec)


def _required_dtype(
    reader: _TableReader, *, default: str | None = None, extra_choices: tuple[str, ...] = ()
) -> DtypeInfo:
    name = reader.optional_string("dtype") or default
    if name is None:
        raise ConfigError(reader.child_key("dtype"), "missing", f"set dtype to one of: {_dtype_choices(extra_choices)}")
    info = dtype_info(name)
    if info is None:
        raise ConfigError(
            reader.child_key("dtype"),
            f"unknown dtype {name!r}{_suggestion(name, [*SUPPORTED_DTYPES, *extra_choices])}",
            f"use one of: {_dtype_choices(extra_choices)}",
        )
    return info


def _dtype_choices(extra_choices: tuple[str, ...]) -> str:
    return ", ".join([*SUPPORTED_DTYPES, *extra_choices])


def _parse_input_shape(reader: _TableReader) -> tuple[int | str, ...]:
    key = reader.child_key("shape")
    value = reader.values.get("shape")
    if value is None:
        raise ConfigError(key, "missing", 'give the shape as a list of sizes and dimension names, e.g. ["batch", 4]')
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(key, f"expected an array, got {_toml_type(value)} {value!r}", 'write it as ["batch", 4]')
    shape: list[int | str] = []
    for position, entry in enumerate(value):
        if _is_integer(entry) and entry >= 0:
            shape.append(entry)
        elif isinstance(entry, str) and entry.isidentifier():
            shape.append(entry)
        else:
            raise ConfigError(
                f"{key}[{position}]",
                f"{entry!r} is neither a size (an integer >= 0) nor a dimension name",
                'use an integer such as 4 or a name such as "batch"',
            )
    return tuple(shape)


def _parse_dims(reader: _TableReader, shape: tuple[int | str, ...]) -> tuple[DimensionBounds, ...]:
    names = list(dict.fromkeys(entry for entry in shape if isinstance(entry, str)))
    declared: dict[str, DimensionBounds] = {}
    dims_reader = reader.optional_table("dims")
    if dims_reader is not None:
        for name in dims_reader.values:
            if name not in names:
                raise ConfigError(
                    dims_reader.child_key(name),
                    f"dimension {name!r} does not appear in shape {list(shape)!r}",
                    "remove it or use the name in shape",
                )
            min_size, max_size = _parse_size_bounds(dims_reader.child(name))
            declared[name] = DimensionBounds(name, min_size, max_size)
    return tuple(declared.get(name, DimensionBounds(name)) for name in names)


def _parse_size_bounds(reader: _TableReader) -> tuple[int, int]:
    reader.reject_unknown(("min", "max"))
    min_size = reader.optional_integer("min", minimum=0)
    max_size = reader.optional_integer("max", minimum=0)
    min_size = DEFAULT_DIMENSION_MIN if min_size is None else min_size
    max_size = max(DEFAULT_DIMENSION_MAX, min_size) if max_size is None else max_size
    if min_size > max_size:
        raise ConfigError(
            reader.child_key("min"),
            f"min {min_size} is greater than max {max_size}",
            "swap the values or widen the range",
        )
    return min_size, max_size


def _parse_value_range(reader: _TableReader, dtype: DtypeInfo) -> tuple[float | None, float | None]:
    bounds = {name: reader.optional_number(name) for name in ("min", "max")}
    for name, value in bounds.items():
        if value is None:
            continue
        key = reader.child_key(name)
        if dtype.kind == "b":
            raise ConfigError(key, "a bool value has no range", f"remove {name}")
        if dtype.is_integer and not float(value).is_integer():
            raise ConfigError(
                key, f"{value!r} is not a whole number, but dtype is {dtype.name}", "use an integer bound"
            )
        if not dtype.min_value <= value <= dtype.max_value:
            raise ConfigError(
                key,
                f"{value!r} is outside the range of {dtype.name} [{dtype.min_value}, {dtype.max_value}]",
                "use a bound the dtype can hold or a wider dtype",
            )
    min_value, max_value = bounds["min"], bounds["max"]
    if dtype.is_integer:
        min_value = None if min_value is None else int(min_value)
        max_value = None if max_value is None else int(max_value)
    if min_value is not None and max_value is not None and min_value > max_value:
        raise ConfigError(
            reader.child_key("min"),
            f"min {min_value!r} is greater than max {max_value!r}",
            "swap the values or widen the range",
        )
    return min_value, max_value


def _parse_special_values(reader: _TableReader, dtype: DtypeInfo) -> tuple[bool, bool]:
    allow_nan = reader.boolean("allow_nan", default=False)
    allow_infinity = reader.boolean("allow_infinity", default=False)
    for name, allowed in (("allow_nan", allow_nan), ("allow_infinity", allow_infinity)):
        if allowed and not dtype.is_float:
            raise ConfigError(
                reader.child_key(name),
                f"{dtype.name} has no NaN or infinity",
                f"use a float dtype or set {name} = false",
            )
    return allow_nan, allow_infinity


# --- output, tolerance and run settings -------------------------------------


def _parse_output(reader: _TableReader, input_spec: InputSpec) -> OutputSpec:
    reader.reject_unknown(("shape", "dtype", "min", "max"))
    shape = _parse_output_shape(reader, input_spec)

    dtype = reader.optional_string("dtype")
    if dtype == "same":
        if isinstance(input_spec, TextInput):
            raise ConfigError(reader.child_key("dtype"), "a text input has no dtype to keep", "name the output dtype")
    elif dtype is not None and dtype_info(dtype) is None:
        raise ConfigError(
            reader.child_key("dtype"),
            f"unknown dtype {dtype!r}{_suggestion(dtype, [*SUPPORTED_DTYPES, 'same'])}",
            f'use "same" or one of: {_dtype_choices(())}',
        )

    min_value = reader.optional_number("min")
    max_value = reader.optional_number("max")
    if min_value is not None and max_value is not None and min_value > max_value:
        raise ConfigError(
            reader.child_key("min"),
            f"min {min_value!r} is greater than max {max_value!r}",
            "swap the values or widen the range",
        )
    return OutputSpec(shape=shape, dtype=dtype, min_value=min_value, max_value=max_value)


def _parse_output_shape(
    reader: _TableReader, input_spec: InputSpec
) -> Literal["same"] | tuple[int | str, ...] | None:
    key = reader.child_key("shape")
    value = reader.values.get("shape")
    if value is None:
        return None
    if value == "same":
        if isinstance(input_spec, (ScalarInput, TextInput)):
            raise ConfigError(
                key,
                f"a {input_spec.kind} input has no shape to keep",
                "give the output shape as a list, e.g. [16]",
            )
        return "same"
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(
            key,
            f'expected "same" or an array, got {_toml_type(value)} {value!r}',
            'write "same" or a list such as ["batch", "features * 2"]',
        )
    known_names = input_spec.dimension_names
    shape: list[int | str] = []
    for position, entry in enumerate(value):
        entry_key = f"{key}[{position}]"
        if _is_integer(entry) and entry >= 0:
            shape.append(entry)
            continue
        if not isinstance(entry, str):
            raise ConfigError(entry_key, f"{entry!r} is neither a size nor a dimension expression")
        try:
            names = expression_names(entry)
        except ShapeExpressionError as error:
            raise ConfigError(
                entry_key, str(error), 'write an integer, a dimension name or e.g. "features * 2"'
            ) from None
        unknown = [name for name in names if name not in known_names]
        if unknown:
            available = ", ".join(known_names) or "none"
            raise ConfigError(
                entry_key,
                f"unknown dimension {unknown[0]!r} (input dimensions: {available})",
                "use a dimension name from the input shape",
            )
        shape.append(entry)
    return tuple(shape)


def _parse_tolerance(reader: _TableReader | None) -> Tolerance | None:
    if reader is None:
        return None
    reader.reject_unknown(("rtol", "atol"))
    if not reader.values:
        raise ConfigError(reader.key, "empty", "set rtol, atol or both, e.g. { rtol = 1e-7, atol = 1e-9 }")
    values: dict[str, float] = {}
    for name in ("rtol", "atol"):
        value = reader.optional_number(name)
        if value is not None and value < 0:
            raise ConfigError(reader.child_key(name), f"{value!r} is negative", "use 0 or a positive number")
        values[name] = 0.0 if value is None else float(value)
    return Tolerance(**values)


def _parse_deadline(reader: _TableReader) -> float | Literal[False] | None:
    value = reader.values.get("deadline")
    if value is None or value is False:
        return value
    key = reader.child_key("deadline")
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ConfigError(
            key,
            f"{value!r} is not a positive number of milliseconds",
            "give milliseconds per example, e.g. deadline = 500, or deadline = false for none",
        )
    return float(value)


# --- properties -------------------------------------------------------------


def _parse_property_list(reader: _TableReader, *, matches: str | None, inverse: str | None) -> tuple[str, ...]:
    key = reader.child_key("properties")
    value = reader.values.get("properties", [])
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(
            key,
            f"expected an array of strings, got {_toml_type(value)} {value!r}",
            'write e.g. ["deterministic", "finite"]',
        )
    names: list[str] = []
    for position, name in enumerate(value):
        entry_key = f"{key}[{position}]"
        if name not in PROPERTY_NAMES:
            hint = _suggestion(name, PROPERTY_NAMES) if isinstance(name, str) else ""
            raise ConfigError(entry_key, f"unknown property {name!r}{hint}", f"use one of: {', '.join(PROPERTY_NAMES)}")
        if name in names:
            raise ConfigError(entry_key, f"property {name!r} is listed twice", "remove the repeated entry")
        names.append(name)

    # The `matches` and `inverse` keys name the function to compare with, so
    # setting them is enough to enable their property.
    for name, target in (("matches", matches), ("inverse", inverse)):
        if target is not None and name not in names:
            names.append(name)
        if target is None and name in names:
            raise ConfigError(
                reader.child_key(name),
                f'property "{name}" is listed but {name} is not set',
                f'set {name} = "module:function"',
            )
    if not names:
        raise ConfigError(key, "no properties declared", f"list at least one of: {', '.join(PROPERTY_NAMES)}")
    return tuple(names)


def _check_properties_apply(spec: PreprocessingSpec, reader: _TableReader) -> None:
    """Reject properties that the spec's input kind or output declaration cannot support."""
    _check_output_declared(spec, reader)
    kind = spec.input.kind
    properties_key = reader.child_key("properties")

    if "batch_invariant" in spec.properties:
        if kind not in ("array", "frame"):
            raise ConfigError(
                properties_key,
                f'"batch_invariant" needs a batch, but the input kind is {kind}',
                'use an array or frame input or remove "batch_invariant"',
            )
        if isinstance(spec.input, ArrayInput) and not (spec.input.shape and isinstance(spec.input.shape[0], str)):
            raise ConfigError(
                f"{reader.child_key('input')}.shape",
                f'"batch_invariant" needs a named batch dimension first, got shape {list(spec.input.shape)!r}',
                'name the first dimension, e.g. shape = ["batch", 4]',
            )
    if "no_mutation" in spec.properties and kind not in ("array", "frame"):
        raise ConfigError(
            properties_key,
            f'"no_mutation" cannot fail for {kind} inputs, which are immutable',
            'remove "no_mutation"',
        )
    if "monotonic" in spec.properties and kind not in ("array", "scalar"):
        raise ConfigError(
            properties_key,
            f'"monotonic" needs ordered inputs, but the input kind is {kind}',
            'use an array or scalar input or remove "monotonic"',
        )


def _check_output_declared(spec: PreprocessingSpec, reader: _TableReader) -> None:
    """Reject a property without the output declaration it checks, and a declaration no property uses."""
    output_key = reader.child_key("output")
    if "shape" in spec.properties and spec.output.shape is None:
        raise ConfigError(
            f"{output_key}.shape",
            'property "shape" needs the expected output shape',
            'set output = { shape = "same" } or a list',
        )
    if "dtype" in spec.properties and spec.output.dtype is None:
        raise ConfigError(
            f"{output_key}.dtype",
            'property "dtype" needs the expected output dtype',
            'set output = { dtype = "same" } or a dtype name',
        )

    has_range = spec.output.min_value is not None or spec.output.max_value is not None
    if "bounded" in spec.properties and not has_range:
        raise ConfigError(
            f"{output_key}.min",
            'property "bounded" needs an output range',
            "set output.min, output.max or both",
        )
    if has_range and "bounded" not in spec.properties:
        raise ConfigError(
            f"{output_key}.min",
            'an output range is set but "bounded" is not in properties',
            'add "bounded" to properties or remove output.min and output.max',
        )
    if "monotonic" in reader.values and "monotonic" not in spec.properties:
        raise ConfigError(
            reader.child_key("monotonic"),
            'a direction is set but "monotonic" is not in properties',
            'add "monotonic" to properties or remove the monotonic key',
        )


# --- reading TOML values ----------------------------------------------------


class _TableReader:
    """Typed access to one TOML table, with errors that name the dotted key."""

    __slots__ = ("key", "values")

    def __init__(self, values: Any, key: str) -> None:
        self.values: Mapping[str, Any] = _require_mapping(values, key)
        self.key = key

    def child_key(self, name: str) -> str:
        return f"{self.key}.{_key_part(name)}"

    def child(self, name: str) -> _TableReader:
        return _TableReader(self.values[name], self.child_key(name))

    def reject_unknown(self, allowed: Sequence[str]) -> None:
        for name in self.values:
            if name not in allowed:
                raise ConfigError(
                    self.child_key(name),
                    f"unknown key {name!r}{_suggestion(name, allowed)}",
                    f"use one of: {', '.join(allowed)}",
                )

    def optional_table(self, name: str) -> _TableReader | None:
        return None if name not in self.values else self.child(name)

    def optional_string(self, name: str, *, choices: Sequence[str] | None = None) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(self.child_key(name), f"expected a string, got {_toml_type(value)} {value!r}")
        if choices is not None and value not in choices:
            raise ConfigError(
                self.child_key(name),
                f"unknown value {value!r}{_suggestion(value, choices)}",
                f"use one of: {', '.join(choices)}",
            )
        return value

    def optional_reference(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else check_reference(value, self.child_key(name))

    def optional_integer(self, name: str, *, minimum: int) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not _is_integer(value) or value < minimum:
            raise ConfigError(self.child_key(name), f"expected an integer >= {minimum}, got {value!r}")
        return value

    def optional_number(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not _is_number(value) or not math.isfinite(value):
            raise ConfigError(self.child_key(name), f"expected a finite number, got {_toml_type(value)} {value!r}")
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.values.get(name, default)
        if not isinstance(value, bool):
            raise ConfigError(self.child_key(name), f"expected true or false, got {_toml_type(value)} {value!r}")
        return value


def _require_mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            key, f"expected a table, got {_toml_type(value)} {value!r}", "write it as { key = value, ... }"
        )
    return value


def _is_integer(value: Any) -> bool:
    # bool is a subclass of int in Python, but `true` is not a size in TOML.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, Sequence):
        return "array"
    return type(value).__name__


def _key_part(name: str) -> str:
    """Quote a key segment the way TOML needs it when it is not a bare key."""
    bare = name and all(character.isalnum() and character.isascii() or character in "-_" for character in name)
    return name if bare else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _suggestion(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
