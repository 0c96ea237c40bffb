"""The check step of the GitHub Actions workflow in docs/ci.md, run on the bad sample repository.

The step writes a SARIF log for code scanning and prints one workflow command per
finding. Both only help a reviewer when they point at the flagged code, so every
annotation with a line is checked against the file's text and against the SARIF result
for the same finding.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
BAD_REPO = ROOT / "fixtures" / "bad-ml-repo"
SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))

#: The check step's command line in docs/ci.md.
CHECK_STEP = (
    "--aiml-only", "-n", "2", "--aiml-report=aiml-report.yaml", "--aiml-sarif=aiml.sarif",
    "--junitxml=aiml-junit.xml",
)
WORKFLOW_COMMAND = re.compile(r"^::(?P<level>error|warning|notice) (?P<properties>[^:]*)::(?P<message>.*)$")
#: A message that opens with the reported call, such as "pickle.load() unpickles ...".
LEADING_CALL = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)\(\)")


def _unescape(text: str) -> str:
    """Undo the escaping of a workflow command's property value or message (%25 last)."""
    for escaped, raw in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, raw)
    return text


def _annotations(lines: list[str]) -> list[dict[str, str]]:
    annotations = []
    for line in lines:
        match = WORKFLOW_COMMAND.match(line)
        if match is None:
            continue
        properties = dict(pair.split("=", 1) for pair in match["properties"].split(","))
        annotations.append({
            **{name: _unescape(value) for name, value in properties.items()},
            "level": match["level"], "message": _unescape(match["message"]),
        })
    return annotations


def _sarif_locations(log: dict[str, Any]) -> set[tuple[str, str, int, int]]:
    locations = set()
    for result in log["runs"][0]["results"]:
        physical = result["locations"][0]["physicalLocation"]
        region = physical.get("region", {})
        locations.add((
            result["ruleId"], physical["artifactLocation"]["uri"],
            region.get("startLine", 0), region.get("startColumn", 0),
        ))
    return locations


def _call_at(source_line: str, column: int, qualified_name: str) -> bool:
    """Tell whether the call starts at the 1-based column, spelled as the file spells it.

    The message names the call by its qualified name (torch.nn.Linear) and the file may
    reach it through an import (nn.Linear), so any dotted tail of the name matches.
    """
    text = source_line[column - 1:]
    parts = qualified_name.split(".")
    return any(text.startswith(".".join(parts[start:]) + "(") for start in range(len(parts)))


def test_check_step_points_at_flagged_code(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(BAD_REPO, pytester.path, dirs_exist_ok=True)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = pytester.runpytest(*CHECK_STEP)

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert (pytester.path / "aiml-report.yaml").is_file()
    assert (pytester.path / "aiml-junit.xml").is_file()
    log = json.loads((pytester.path / "aiml.sarif").read_text(encoding="utf-8"))
    jsonschema.validate(log, SCHEMA)
    sarif = _sarif_locations(log)

    annotations = _annotations(result.outlines)
    located = [annotation for annotation in annotations if "line" in annotation]
    assert len(located) >= 8, result.outlines
    calls_checked = 0
    for annotation in located:
        code = annotation["title"].split()[0]
        line, column = int(annotation["line"]), int(annotation["col"])
        where = f"{annotation['file']}:{line}:{column} {code}"
        assert (code, annotation["file"], line, column) in sarif, f"{where} has no SARIF result at that place"
        source_line = (pytester.path / annotation["file"]).read_text(encoding="utf-8").splitlines()[line - 1]
        before = source_line[column - 2] if column > 1 else " "
        assert not (before.isalnum() or before in "_."), f"{where} starts inside a name: {source_line!r}"
        call = LEADING_CALL.match(annotation["message"])
        if call is not None:
            assert _call_at(source_line, column, call["name"]), f"{where}: {call['name']}() not at {source_line!r}"
            calls_checked += 1
    assert calls_checked >= 6
    for annotation in annotations:
        if "file" in annotation:
            assert (pytester.path / annotation["file"]).is_file(), annotation
