"""Source files that are not analysed are reported, and large notebooks are analysed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pytest_aiml.__main__ import main
from pytest_aiml.engine.reads import TEXT_LIMIT
from pytest_aiml.report.sarif import build_sarif
from pytest_aiml.engine.registry import builtin_rules
from tests.plugin.test_sarif import SCHEMA
from tests.report_validation import assert_valid_report

UNSAFE_LOAD = "import pickle\n\ndef load(path):\n    with open(path, 'rb') as stream:\n        return pickle.load(stream)\n"
#: Over the limit for Python sources by four bytes, and harmless to parse if it were read.
GENERATED = "x = 1\n" * (TEXT_LIMIT // 6 + 1)
RUN = ("--aiml-only", "--aiml-select=AIML101", "-p", "no:randomly", "-rs")


def notebook(code: str, plot_bytes: int) -> str:
    """A notebook whose one code cell shows a base64 plot of ``plot_bytes``, as a saved notebook does."""
    plot = {"output_type": "display_data", "data": {"image/png": "A" * plot_bytes}, "metadata": {}}
    cell = {"cell_type": "code", "source": code, "metadata": {}, "outputs": [plot], "execution_count": 1}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _report(pytester: pytest.Pytester, name: str = "aiml.yaml") -> dict[str, Any]:
    document = yaml.safe_load((pytester.path / name).read_text(encoding="utf-8"))
    assert_valid_report(document)
    return document


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_large_source_skipped_with_size(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(model_io=UNSAFE_LOAD)
    pytester.path.joinpath("generated_pb2.py").write_text(GENERATED, encoding="utf-8")
    result = pytester.runpytest(*RUN, "--aiml-report=aiml.yaml", *workers)
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "files not analysed (too large, binary or unreadable; -rs shows why): 1",
            "SKIPPED [[]1[]] generated_pb2.py:1: generated_pb2.py was not analysed: 2,000,004 bytes, over the "
            "2,000,000-byte limit for Python sources. Fix: if it is generated or vendored code, add it to 'exclude'*",
        ]
    )
    details = _report(pytester)["aiml_analysis"]["x_pytest_aiml"]
    assert details["unread_files"] == [
        {"path": "generated_pb2.py", "reason": "2,000,004 bytes, over the 2,000,000-byte limit for Python sources"}
    ]


def test_excluded_large_source_has_no_item(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE_LOAD)
    pytester.path.joinpath("generated_pb2.py").write_text(GENERATED, encoding="utf-8")
    pytester.makepyprojecttoml('[tool.pytest-aiml]\nexclude = ["*_pb2.py"]\n')
    result = pytester.runpytest(*RUN, "--aiml-report=aiml.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "not analysed" not in result.stdout.str()
    assert _report(pytester)["aiml_analysis"]["x_pytest_aiml"]["unread_files"] == []


def test_binary_source_is_skipped(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("packed.py").write_bytes(b"import pickle\0\0")
    result = pytester.runpytest(*RUN, "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * packed.py was not analysed: contains NUL bytes, so it is not text. Fix: *"])


def test_notebook_with_large_plots_is_analysed(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("explore.ipynb").write_text(notebook(UNSAFE_LOAD, plot_bytes=3 * TEXT_LIMIT), encoding="utf-8")
    cold = pytester.runpytest(*RUN)
    cold.assert_outcomes(failed=1)
    cold.stdout.fnmatch_lines(["explore.ipynb:5:16 AIML101 cell 1: *"])
    warm = pytester.runpytest(*RUN)
    warm.assert_outcomes(failed=1)


def test_merged_shards_keep_unread_files(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE_LOAD)
    pytester.mkdir("gen").joinpath("big_pb2.py").write_text(GENERATED, encoding="utf-8")
    for name, path in (("one", "gen"), ("two", "model_io.py")):
        pytester.runpytest(*RUN, f"--aiml-report={name}.yaml", "-p", "no:cacheprovider", path)
    assert main(["merge-reports", str(pytester.path / "merged.yaml"), *(str(pytester.path / f"{name}.yaml") for name in ("one", "two"))]) == 0
    assert _report(pytester, "merged.yaml")["aiml_analysis"]["x_pytest_aiml"]["unread_files"] == [
        {"path": "gen/big_pb2.py", "reason": "2,000,004 bytes, over the 2,000,000-byte limit for Python sources"}
    ]


def test_sarif_warns_of_unread_file() -> None:
    unread = {"unread": {"path": "gen/big_pb2.py", "reason": "2,000,004 bytes, over the 2,000,000-byte limit for Python sources"}}
    log = build_sarif([unread], builtin_rules(), tool_version="0.1.0")
    jsonschema.validate(log, SCHEMA)
    [notification] = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert notification["level"] == "warning"
    assert notification["message"]["text"] == f"not analysed: {unread['unread']['reason']}"
    assert notification["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "gen/big_pb2.py"
