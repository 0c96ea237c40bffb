"""The NumPy dtypes that preprocessing specs accept, described without importing NumPy.

Specs are parsed while pytest loads its configuration, so this table lets the
parser reject a bad dtype or an out-of-range bound before anything heavy is
imported.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DtypeInfo:
    """Kind and value range of one supported dtype.

    ``kind`` is NumPy's one-letter kind code: ``b`` bool, ``i`` signed integer,
    ``u`` unsigned integer, ``f`` float. ``bits`` is the item size in bits.
    ``min_value`` and ``max_value`` are the finite extremes (``None`` for bool).
    """

    name: str
    kind: str
    bits: int
    min_value: float | int | None
    max_value: float | int | None

    @property
    def is_float(self) -> bool:
        return self.kind == "f"

    @property
    def is_integer(self) -> bool:
        return self.kind in ("i", "u")


def _signed(bits: int) -> DtypeInfo:
    return DtypeInfo(f"int{bits}", "i", bits, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _unsigned(bits: int) -> DtypeInfo:
    return DtypeInfo(f"uint{bits}", "u", bits, 0, 2**bits - 1)


# The float extremes are the values of numpy.finfo(dtype).max.
SUPPORTED_DTYPES: dict[str, DtypeInfo] = {
    info.name: info
    for info in (
        DtypeInfo("bool", "b", 8, None, None),
        *(_signed(bits) for bits in (8, 16, 32, 64)),
        *(_unsigned(bits) for bits in (8, 16, 32, 64)),
        DtypeInfo("float16", "f", 16, -65504.0, 65504.0),
        DtypeInfo("float32", "f", 32, -3.4028234663852886e38, 3.4028234663852886e38),
        DtypeInfo("float64", "f", 64, -1.7976931348623157e308, 1.7976931348623157e308),
    )
}


def dtype_info(name: str) -> DtypeInfo | None:
    """Look up a dtype by its NumPy name (``float64``); ``None`` when unsupported."""
    return SUPPORTED_DTYPES.get(name)
