"""The DataFrame type inference the pandas rules share, and rule cases the examples do not pin down."""

from __future__ import annotations

import json

import libcst as cst
import pytest

from pytest_aiml.engine.context import ModuleContext, RepoContext
from pytest_aiml.engine.examples import run_example
from pytest_aiml.engine.rule import Example
from pytest_aiml.rules.dataframes import (
    DATAFRAME,
    PANDAS,
    SERIES,
    DiscardedDataFrameResult,
    NpDotMatrixProduct,
    ValuesInsteadOfToNumpy,
    frame_types,
)

PRELUDE = (
    "import numpy as np\nimport pandas as pd\nfrom sklearn.model_selection import train_test_split\n"
    "df = pd.read_csv('d.csv')\ns = pd.Series([1, 2])\narr = np.zeros(3)\n"
)


def _kind_of_last_line(source: str) -> str | None:
    """Infer the kind of the expression on the last line of ``PRELUDE + source``, at module level."""
    module = cst.parse_module(PRELUDE + source)
    context = ModuleContext("example.py", module, RepoContext())
    statement = module.body[-1]
    assert isinstance(statement, cst.SimpleStatementLine)
    expression = statement.body[0]
    assert isinstance(expression, cst.Expr)
    return frame_types(context).kind(expression.value, module)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("df\n", DATAFRAME),
        ("s\n", SERIES),
        ("arr\n", None),
        ("df['a']\n", SERIES),
        ("df[['a', 'b']]\n", DATAFRAME),
        ("df[df['a'] > 0]\n", DATAFRAME),
        ("df[column]\n", PANDAS),
        ("s[0]\n", None),
        ("s[s > 0]\n", SERIES),
        ("df.loc[0]\n", PANDAS),
        ("df.loc[i, 'a']\n", None),
        ("df.loc[df['a'] > 0, 'b']\n", PANDAS),
        ("df.at[0, 'a']\n", None),
        ("df.dropna()\n", DATAFRAME),
        ("df.dropna(inplace=True)\n", None),
        ("df['a'].fillna(0)\n", SERIES),
        ("df.groupby('a').mean()\n", PANDAS),
        ("df.groupby('a')\n", None),
        ("df['a'].value_counts()\n", SERIES),
        ("df['a'].mean()\n", None),
        ("df.T\n", DATAFRAME),
        ("df['a'] * 2\n", SERIES),
        ("df['a'].str.lower()\n", PANDAS),
        ("df.to_numpy()\n", None),
        ("pd.concat([df, df])\n", PANDAS),
        ("pd.read_csv('x.csv', chunksize=10)\n", None),
        ("pd.read_excel('x.xlsx', sheet_name=None)\n", None),
        ("x = df.copy()\nx = x.reset_index()\nx\n", DATAFRAME),
        ("x = df\nx = x.values\nx\n", None),
        ("a, b = train_test_split(df)\na\n", DATAFRAME),
        ("a, b, c, d = train_test_split(arr, s)\nc\n", SERIES),
        ("a, b, c, d = train_test_split(arr, s)\na\n", None),
        ("x = df if flag else s\nx\n", PANDAS),
        ("x = df if flag else arr\nx\n", None),
    ],
)
def test_frame_kind_table(source, expected):
    assert _kind_of_last_line(source) == expected


def test_parameter_annotation_sets_kind():
    source = "import pandas as pd\n\ndef f(frame: 'pd.DataFrame', other):\n    return frame.values, other.values\n"
    findings = run_example(ValuesInsteadOfToNumpy, Example(source))
    assert [finding.message for finding in findings] == ["frame.values: use frame.to_numpy() for a NumPy array"]


def test_function_scope_does_not_leak():
    source = (
        "import pandas as pd\n\ndef load():\n    frame = pd.read_csv('a.csv', dtype=str)\n    return frame\n\n"
        "def other(frame):\n    return frame.values\n"
    )
    assert run_example(ValuesInsteadOfToNumpy, Example(source)) == []


def test_closure_sees_enclosing_frame():
    source = (
        "import pandas as pd\n\ndef outer():\n    frame = pd.read_csv('a.csv', dtype=str)\n\n"
        "    def inner():\n        return frame.values\n    return inner\n"
    )
    findings = run_example(ValuesInsteadOfToNumpy, Example(source))
    assert [finding.line for finding in findings] == [7]


def test_lambda_parameter_hides_frame_name():
    source = (
        "import pandas as pd\n\ndf = pd.read_csv('a.csv', dtype=str)\nshapes = map(lambda df: df.values, arrays)\n"
    )
    assert run_example(ValuesInsteadOfToNumpy, Example(source)) == []


def test_discarded_result_message_names_receiver():
    source = "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\ndf.fillna(0)\n"
    (finding,) = run_example(DiscardedDataFrameResult, Example(source))
    assert finding.message == "df.fillna() returns a new DataFrame and the result is discarded, so df is unchanged"


def test_notebook_cell_end_is_displayed_not_discarded():
    cells = [
        ["import numpy as np\n", "values = np.zeros(3)\n", "np.append(values, 1)"],
        ["np.append(values, 2)\n", "print(values)"],
    ]
    document = {
        "cells": [
            {"cell_type": "code", "source": source, "metadata": {}, "outputs": [], "execution_count": None}
            for source in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    findings = run_example(DiscardedDataFrameResult, Example(json.dumps(document), path="nb.ipynb"))
    assert [finding.message.split(":", 1)[0] for finding in findings] == ["cell 2"]


def test_np_dot_three_dimensional_operand_is_silent():
    source = "import numpy as np\n\nA = np.ones((2, 3, 4))\nB = np.eye(4)\nC = np.dot(A, B)\n"
    assert run_example(NpDotMatrixProduct, Example(source)) == []
