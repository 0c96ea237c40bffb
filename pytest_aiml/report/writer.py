"""Write the report atomically, and give access to the JSON Schema shipped with it."""

from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


@lru_cache(maxsize=1)
def report_schema() -> dict[str, Any]:
    """Return the JSON Schema of the report file, shipped as ``pytest_aiml/report/schema.json``."""
    text = resources.files("pytest_aiml.report").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def dump_report(document: dict[str, Any]) -> str:
    # Keys keep the order the builder gives them, which follows the specification's schema.
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def write_report(document: dict[str, Any], path: Path) -> None:
    """Write ``document`` as YAML to ``path`` through a temporary file and a rename.

    A reader never sees a half-written report, even when the run is interrupted.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dump_report(document)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        # mkstemp creates the file readable by its owner only; a report is meant to be shared.
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
