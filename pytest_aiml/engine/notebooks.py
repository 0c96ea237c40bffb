"""Notebook code cells as Python source, with a map back to cell and line."""

from __future__ import annotations

import json
from dataclasses import dataclass


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
        for number, line in enumerate(text_of_cell.splitlines(), start=1):
            stripped = line.lstrip()
            if stripped.startswith(("%", "!", "?")) or stripped.endswith("?"):
                line = line[: len(line) - len(stripped)] + "# " + stripped
            lines.append(line)
            origin.append((code_number, number))
        lines.append("")
        origin.append((code_number, 0))
    return NotebookSource(source="\n".join(lines) + "\n", cell_of_line=tuple(origin))
