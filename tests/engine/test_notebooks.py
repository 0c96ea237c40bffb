"""Notebook code cells become one parseable module, with IPython syntax neutralised."""

from __future__ import annotations

import json

from pytest_aiml.engine.notebooks import notebook_source


def _notebook(*cells: str) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code", "source": cell, "metadata": {}, "outputs": [], "execution_count": None}
                for cell in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def _compiles(source: str) -> bool:
    compile(source, "notebook", "exec")
    return True


def test_magic_only_block_still_parses():
    notebook = notebook_source(_notebook("import sys\nif 'google.colab' in sys.modules:\n    %pip install -q statsmodels\nx = 1\n"))
    assert "    pass  # %pip install -q statsmodels" in notebook.source
    assert _compiles(notebook.source)


def test_shell_cell_magic_is_commented_out():
    notebook = notebook_source(_notebook("%%bash --bg\nexport TF_CONFIG='{\"a\": 1}'\npython task.py > log 2>&1\n", "y = 2\n"))
    assert "# export TF_CONFIG" in notebook.source
    assert _compiles(notebook.source)


def test_python_cell_magic_keeps_its_body():
    notebook = notebook_source(_notebook("%%time\nmodel.fit(X, y)\n"))
    lines = notebook.source.splitlines()
    assert lines[0] == "pass  # %%time"
    assert lines[1] == "model.fit(X, y)"


def test_lines_map_back_to_cells():
    notebook = notebook_source(_notebook("a = 1\n", "%%writefile job.py\nprint('hi')\n", "b = 2\n"))
    assert notebook.locate(1) == (1, 1)
    assert notebook.locate(notebook.source.splitlines().index("b = 2") + 1) == (3, 1)


def test_continued_shell_line_is_commented_out():
    notebook = notebook_source(_notebook("!saved_model_cli show --dir m \\\n    --signature_def serving_default\nz = 3\n"))
    assert notebook.source.splitlines()[1] == "#     --signature_def serving_default"
    assert _compiles(notebook.source)


def test_bracketed_magic_line_is_commented_out():
    notebook = notebook_source(_notebook("%timeit np.fromiter((a + b for a, b in zip(x, y)),\n    dtype=x.dtype, count=len(x))\nz = 3\n"))
    assert notebook.source.splitlines()[1] == "#     dtype=x.dtype, count=len(x))"
    assert _compiles(notebook.source)
