"""Hypothesis strategies for the inputs of preprocessing functions.

pytest-aiml builds its generated property tests from these strategies, and they
are public so that a repository can write its own ``@given`` tests over the same
inputs it declares in ``pyproject.toml``. Each keyword builder takes the keys of
an ``input`` table (``min``/``max`` are spelt ``min_value``/``max_value``, as in
Hypothesis)::

    import numpy as np
    from hypothesis import given
    from pytest_aiml import strategies

    @given(strategies.array_inputs("float64", ["batch", 4], dims={"batch": (1, 32)},
                                   min_value=-1e6, max_value=1e6))
    def test_standardize_keeps_the_shape(features):
        assert standardize(features).shape == features.shape

    # or reuse the declaration itself:
    @given(strategies.declared_inputs("churn.features:standardize"))
    def test_standardize_is_centred(features): ...

Invalid arguments raise :class:`hypothesis.errors.InvalidArgument`. Array, scalar
and frame inputs need NumPy; frame inputs also need pandas.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hypothesis_numpy

from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.properties.dtypes import dtype_info
from pytest_aiml.properties.spec import (
    ArrayInput,
    ColumnSpec,
    FrameInput,
    InputSpec,
    ScalarInput,
    TextInput,
    parse_input_spec,
    parse_preprocessing_spec,
    spec_key,
    without_special_values,
)

__all__ = [
    "array_inputs",
    "declared_inputs",
    "frame_inputs",
    "inputs_from_spec",
    "inputs_from_table",
    "ordered_pairs",
    "scalar_inputs",
    "text_inputs",
]

# Drawing every element separately lets Hypothesis shrink each one towards zero,
# so a failing example shows which element matters. Above this many elements a
# shared fill value keeps generation fast.
_MAX_ELEMENTS_DRAWN_SEPARATELY = 10_000


def array_inputs(
    dtype: str = "float64",
    shape: Sequence[int | str] = ("batch",),
    *,
    dims: Mapping[str, tuple[int, int]] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    allow_nan: bool = False,
    allow_infinity: bool = False,
) -> st.SearchStrategy[np.ndarray]:
    """Generate NumPy arrays of ``dtype`` whose ``shape`` may contain dimension names.

    ``dims`` maps a dimension name to its inclusive ``(min, max)`` size; a name
    without bounds has sizes 1 to 10. ``min_value`` and ``max_value`` bound the
    finite elements; ``allow_nan`` and ``allow_infinity`` add NaN and +/-inf.
    """
    table: dict[str, Any] = {"kind": "array", "dtype": dtype, "shape": list(shape)}
    if dims:
        table["dims"] = {name: {"min": low, "max": high} for name, (low, high) in dims.items()}
    table.update(_range_keys(min_value, max_value))
    table.update(allow_nan=allow_nan, allow_infinity=allow_infinity)
    return inputs_from_spec(_parse_arguments(table, "array_inputs"))


def scalar_inputs(
    dtype: str = "float64",
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    allow_nan: bool = False,
    allow_infinity: bool = False,
) -> st.SearchStrategy[Any]:
    """Generate single numbers of ``dtype``.

    ``float64``, ``int64`` and ``bool`` give Python ``float``, ``int`` and ``bool``;
    other dtypes give NumPy scalars such as ``numpy.float32``.
    """
    table: dict[str, Any] = {"kind": "scalar", "dtype": dtype, **_range_keys(min_value, max_value)}
    table.update(allow_nan=allow_nan, allow_infinity=allow_infinity)
    return inputs_from_spec(_parse_arguments(table, "scalar_inputs"))


def text_inputs(
    *,
    min_size: int = 0,
    max_size: int | None = None,
    alphabet: str | None = None,
    codec: str | None = None,
) -> st.SearchStrategy[str]:
    """Generate strings of ``min_size`` to ``max_size`` characters.

    ``alphabet`` lists the allowed characters; ``codec`` (``"ascii"``,
    ``"latin-1"``, ``"utf-8"``) keeps characters that codec can encode.
    """
    table: dict[str, Any] = {"kind": "text", "min_size": min_size}
    optional = {"max_size": max_size, "alphabet": alphabet, "codec": codec}
    table.update({name: value for name, value in optional.items() if value is not None})
    return inputs_from_spec(_parse_arguments(table, "text_inputs"))


def frame_inputs(
    columns: Mapping[str, Mapping[str, Any]], *, min_rows: int = 1, max_rows: int = 10
) -> st.SearchStrategy[Any]:
    """Generate pandas ``DataFrame`` objects with a ``RangeIndex``.

    ``columns`` maps each column name to the keys of a column table:
    ``{"age": {"dtype": "float64", "min": 0, "max": 120, "nullable": True}}``.
    """
    table = {"kind": "frame", "columns": dict(columns), "rows": {"min": min_rows, "max": max_rows}}
    return inputs_from_spec(_parse_arguments(table, "frame_inputs"))


def inputs_from_table(table: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Generate inputs for an ``input`` table written as in ``pyproject.toml``.

    Raises :class:`~pytest_aiml.engine.errors.ConfigError` for an invalid table.
    """
    return inputs_from_spec(parse_input_spec(table, "input"))


def declared_inputs(
    reference: str, pyproject: str | os.PathLike[str] = "pyproject.toml"
) -> st.SearchStrategy[Any]:
    """Generate inputs for the function ``reference`` as ``pyproject`` declares it.

    A relative ``pyproject`` path is resolved against the current working
    directory. Raises :class:`~pytest_aiml.engine.errors.ConfigError`
    when the function is not declared there or its table is invalid.
    """
    path = Path(pyproject)
    with path.open("rb") as file:
        document = _toml_module().load(file)
    declared = document.get("tool", {}).get("pytest-aiml", {}).get("preprocessing", {})
    if reference not in declared:
        names = ", ".join(repr(name) for name in declared) or "none"
        raise ConfigError(
            spec_key(reference),
            f"not declared in {str(path)!r} (declared functions: {names})",
            f'add a [tool.pytest-aiml.preprocessing."{reference}"] table or check the spelling',
        )
    return inputs_from_spec(parse_preprocessing_spec(reference, declared[reference]).input)


def inputs_from_spec(input_spec: InputSpec) -> st.SearchStrategy[Any]:
    """Generate inputs for a parsed input spec."""
    if isinstance(input_spec, ArrayInput):
        return _shapes(input_spec).flatmap(lambda shape: _arrays_of_shape(input_spec, shape))
    if isinstance(input_spec, ScalarInput):
        return _scalars(input_spec)
    if isinstance(input_spec, TextInput):
        return _texts(input_spec)
    if isinstance(input_spec, FrameInput):
        return _frames(input_spec)
    raise InvalidArgument(f"inputs_from_spec: {input_spec!r} is not an input spec")


def ordered_pairs(input_spec: InputSpec) -> st.SearchStrategy[tuple[Any, Any]]:
    """Generate ``(low, high)`` pairs with ``low <= high`` element by element.

    Both values of a pair have the same shape. Pairs contain no NaN or infinity,
    because NaN has no order. Only array and scalar inputs have pairs.
    """
    finite_spec = without_special_values(input_spec)
    if isinstance(finite_spec, ArrayInput):
        return _shapes(finite_spec).flatmap(
            lambda shape: st.tuples(_arrays_of_shape(finite_spec, shape), _arrays_of_shape(finite_spec, shape))
        ).map(lambda pair: (np.minimum(*pair), np.maximum(*pair)))
    if isinstance(finite_spec, ScalarInput):
        values = _scalars(finite_spec)
        return st.tuples(values, values).map(lambda pair: (min(pair), max(pair)))
    raise InvalidArgument(f"ordered_pairs: {input_spec.kind} inputs have no order; use an array or scalar input")


# --- builders ---------------------------------------------------------------


def _shapes(spec: ArrayInput) -> st.SearchStrategy[tuple[int, ...]]:
    sizes = st.fixed_dictionaries(
        {bounds.name: st.integers(bounds.min_size, bounds.max_size) for bounds in spec.dims}
    )
    return sizes.map(lambda drawn: tuple(drawn[entry] if isinstance(entry, str) else entry for entry in spec.shape))


def _arrays_of_shape(spec: ArrayInput, shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    elements = _elements(spec.dtype, spec.min_value, spec.max_value, spec.allow_nan, spec.allow_infinity)
    fill = st.nothing() if _largest_size(spec) <= _MAX_ELEMENTS_DRAWN_SEPARATELY else None
    return hypothesis_numpy.arrays(np.dtype(spec.dtype), shape, elements=elements, fill=fill)


def _largest_size(spec: ArrayInput) -> int:
    largest = {bounds.name: bounds.max_size for bounds in spec.dims}
    return int(np.prod([largest[entry] if isinstance(entry, str) else entry for entry in spec.shape]))


def _scalars(spec: ScalarInput) -> st.SearchStrategy[Any]:
    values = _elements(spec.dtype, spec.min_value, spec.max_value, spec.allow_nan, spec.allow_infinity)
    if spec.dtype in ("float64", "int64", "bool"):
        return values
    return values.map(np.dtype(spec.dtype).type)


def _texts(spec: TextInput) -> st.SearchStrategy[str]:
    if spec.alphabet is not None:
        alphabet: str | st.SearchStrategy[str] = spec.alphabet
    elif spec.codec is not None:
        alphabet = st.characters(codec=spec.codec)
    else:
        alphabet = st.characters(codec="utf-8")
    return st.text(alphabet, min_size=spec.min_size, max_size=spec.max_size)


def _frames(spec: FrameInput) -> st.SearchStrategy[Any]:
    try:
        from hypothesis.extra import pandas as hypothesis_pandas
    except ImportError as error:
        raise InvalidArgument(f"frame inputs need pandas, which is not installed ({error})") from error
    columns = [
        hypothesis_pandas.column(name=column.name, elements=_column_elements(column), dtype=_column_dtype(column))
        for column in spec.columns
    ]
    rows = hypothesis_pandas.range_indexes(min_size=spec.min_rows, max_size=spec.max_rows)
    return hypothesis_pandas.data_frames(columns=columns, index=rows)


def _column_elements(column: ColumnSpec) -> st.SearchStrategy[Any]:
    if column.dtype == "str":
        texts = st.text(st.characters(codec="utf-8"), max_size=20)
        return st.one_of(texts, st.none()) if column.nullable else texts
    return _elements(column.dtype, column.min_value, column.max_value, column.nullable, False)


def _column_dtype(column: ColumnSpec) -> np.dtype:
    return np.dtype(object) if column.dtype == "str" else np.dtype(column.dtype)


def _elements(
    dtype_name: str, min_value: float | None, max_value: float | None, allow_nan: bool, allow_infinity: bool
) -> st.SearchStrategy[Any]:
    info = dtype_info(dtype_name)
    assert info is not None, dtype_name  # the spec parser accepts only known dtypes
    if info.kind == "b":
        return st.booleans()
    if info.is_integer:
        low = info.min_value if min_value is None else int(min_value)
        high = info.max_value if max_value is None else int(max_value)
        return st.integers(min_value=low, max_value=high)

    low, high = _representable_range(dtype_name, min_value, max_value)
    finite = st.floats(
        min_value=low, max_value=high, allow_nan=False, allow_infinity=False, width=info.bits
    )
    special = [st.just(float("nan"))] if allow_nan else []
    if allow_infinity:
        special.append(st.sampled_from([float("-inf"), float("inf")]))
    return st.one_of(finite, *special)


def _representable_range(
    dtype_name: str, min_value: float | None, max_value: float | None
) -> tuple[float | None, float | None]:
    """Round the bounds inwards to values the float dtype represents exactly.

    Hypothesis rejects a bound such as 0.1 for 32-bit floats, which cannot
    represent it, so the nearest float32 inside the range stands in for it.
    """
    scalar_type = np.dtype(dtype_name).type
    low = high = None
    if min_value is not None:
        low = scalar_type(min_value)
        if float(low) < min_value:
            low = np.nextafter(low, scalar_type(np.inf))
        low = float(low)
    if max_value is not None:
        high = scalar_type(max_value)
        if float(high) > max_value:
            high = np.nextafter(high, scalar_type(-np.inf))
        high = float(high)
    return low, high


def _range_keys(min_value: float | None, max_value: float | None) -> dict[str, float]:
    keys = {"min": min_value, "max": max_value}
    return {name: value for name, value in keys.items() if value is not None}


def _parse_arguments(table: Mapping[str, Any], builder: str) -> InputSpec:
    try:
        return parse_input_spec(table, "input")
    except ConfigError as error:
        argument = error.key.removeprefix("input.")
        fix = f" ({error.fix})" if error.fix else ""
        raise InvalidArgument(f"{builder}: {argument}: {error.problem}{fix}") from None


def _toml_module() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli

    return tomli
