"""Notebook code cells as Python source, with a map back to cell and line."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

log = logging.getLogger("pytest_aiml.notebooks")


@dataclass(frozen=True, slots=True)
class NotebookSource:
    """The code cells of a notebook joined into one module.

    IPython magics and shell escapes become comments so that the module parses;
    ``cell_of_line[i]`` is the ``(cell_number, line_in_cell)`` of line ``i + 1``.
    """

    source: str
    cell_of_line: tuple[tuple[int, int], ...]

    def locate(self, line: int) -> tuple[int, int]:
        if 1 <= line <= len(self.cell_of_line):
            return self.cell_of_line[line - 1]
        return (0, line)


def notebook_source(text: str) -> NotebookSource:
    """Extract the code cells of an ``.ipynb`` document.

    Raises ValueError when the document is not notebook JSON.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid notebook JSON: {error.msg} at line {error.lineno}") from error
    cells = document.get("cells") if isinstance(document, dict) else None
    if not isinstance(cells, list):
        raise ValueError("not a notebook: no 'cells' list")
    lines: list[str] = []
    origin: list[tuple[int, int]] = []
    code_number = 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        code_number += 1
        source = cell.get("source", "")
        text_of_cell = "".join(source) if isinstance(source, list) else str(source)
        foreign = _runs_other_language(text_of_cell)
        # Open brackets, or a final backslash, carry a magic or shell line onto the next line.
        depth, continued = 0, False
        for number, line in enumerate(text_of_cell.splitlines(), start=1):
            stripped = line.lstrip()
            if foreign or continued:
                depth += _bracket_balance(line)
                continued = depth > 0 or line.endswith("\\")
                line = "# " + line
            elif stripped.startswith(("%", "!", "?")) or stripped.endswith("?"):
                depth = _bracket_balance(line)
                continued = depth > 0 or line.endswith("\\")
                # ``pass`` keeps a block whose only statement was a magic (``if colab: %pip ...``) valid.
                line = line[: len(line) - len(stripped)] + "pass  # " + stripped
            lines.append(line)
            origin.append((code_number, number))
        lines.append("")
        origin.append((code_number, 0))
    return NotebookSource(source="\n".join(lines) + "\n", cell_of_line=tuple(origin))


def python_code(path: str, text: str) -> str | None:
    """Return the Python code of a file: its text, or a notebook's code cells joined.

    A notebook that is not notebook JSON gives None, and the reason is logged at debug level.
    """
    if not path.endswith(".ipynb"):
        return text
    try:
        return notebook_source(text).source
    except ValueError as error:
        log.debug("%s: %s", path, error)
        return None


#: Cell magics whose body is Python that IPython runs; every other cell magic
#: (``%%bash``, ``%%writefile``, ``%%html``, ``%%sql``...) contains text that is not run as Python.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python", "python3", "pypy"})


def _runs_other_language(cell: str) -> bool:
    """Tell whether a cell starts with a cell magic whose body is not Python."""
    first = next((line.strip() for line in cell.splitlines() if line.strip()), "")
    if not first.startswith("%%"):
        return False
    name = first[2:].split(maxsplit=1)[0] if len(first) > 2 else ""
    return name not in PYTHON_CELL_MAGICS


def _bracket_balance(line: str) -> int:
    """Count opening minus closing brackets; a rough count, since it reads no string literals."""
    return sum(line.count(opening) for opening in "([{") - sum(line.count(closing) for closing in ")]}")
