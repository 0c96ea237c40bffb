"""Settings of artifact inspection, with the defaults used when the config sets none."""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class ArtifactSettings:
    """Read limits for artifacts and the globals their pickles may import.

    ``max_read_bytes``: files larger than this are listed in the inventory but not
    read; their byte checks report "unscannable" with the size. Readers stream, so
    the limit bounds scan time, not memory.
    ``extra_allowed_globals``: ``module.name`` or ``module.*`` entries added to the
    default pickle allowlist.
    ``allow_sklearn_classes``: admit any CamelCase class of a scikit-learn module.
    ``max_pickle_opcodes``: per pickle stream; more marks the stream unscannable.
    ``max_zip_members``: per archive; more marks the archive unscannable.
    ``max_config_bytes``: largest Keras config or safetensors header that is parsed.
    ``run_onnx_checker``: run ``onnx.checker`` (imports onnx) on ONNX files.
    """

    max_read_bytes: int = 4 * GIB
    extra_allowed_globals: tuple[str, ...] = ()
    allow_sklearn_classes: bool = True
    max_pickle_opcodes: int = 50_000_000
    max_zip_members: int = 100_000
    max_config_bytes: int = 100_000_000
    run_onnx_checker: bool = True

    def __post_init__(self) -> None:
        for name in ("max_read_bytes", "max_pickle_opcodes", "max_zip_members", "max_config_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"ArtifactSettings.{name} must be a positive integer, got {value!r}")
        if isinstance(self.extra_allowed_globals, str) or not all(
            isinstance(entry, str) for entry in self.extra_allowed_globals
        ):
            raise ValueError(
                "ArtifactSettings.extra_allowed_globals must be a tuple of 'module.name' strings, "
                f"got {self.extra_allowed_globals!r}"
            )
