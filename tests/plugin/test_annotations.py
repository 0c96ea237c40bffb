"""GitHub Actions annotations: the workflow commands, their escaping and GitHub's limits per level."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_aiml.annotations import annotations_requested, escape_data, escape_property, github_annotations

BAD_REPO = Path(__file__).resolve().parents[2] / "fixtures" / "bad-ml-repo"
RUN = ("--aiml-only", "-p", "no:cacheprovider")


def _payload(priority: str, findings: list[dict[str, Any]], code: str = "AIML101") -> dict[str, Any]:
    return {"code": code, "slug": "unsafe-deserialization", "priority": priority, "fix": "Use safetensors.",
            "findings": findings}


def _finding(path: str = "src/load.py", line: int = 3, column: int = 5, message: str = "pickle.load() unpickles") -> dict[str, Any]:
    return {"code": "AIML101", "path": path, "line": line, "column": column, "message": message}


def test_annotation_line_format() -> None:
    [line] = github_annotations([_payload("critical", [_finding()])])
    assert line == ("::error file=src/load.py,line=3,col=5,title=AIML101 unsafe-deserialization"
                    "::pickle.load() unpickles%0AFix: Use safetensors.")


def test_annotation_levels_by_priority() -> None:
    levels = {}
    for priority in ("critical", "high", "medium", "low"):
        [line] = github_annotations([_payload(priority, [_finding()])])
        levels[priority] = line.split(" ", 1)[0]
    assert levels == {"critical": "::error", "high": "::error", "medium": "::warning", "low": "::notice"}


def test_annotation_escaping() -> None:
    assert escape_data("100% a\r\nb") == "100%25 a%0D%0Ab"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    [line] = github_annotations([_payload("low", [_finding(path="odd,dir/a:b.py", message="50%, then\nmore")])])
    assert line.startswith("::notice file=odd%2Cdir/a%3Ab.py,line=3,")
    assert line.endswith("::50%25, then%0Amore%0AFix: Use safetensors.")


def test_annotation_file_level_findings() -> None:
    findings = [_finding(path="models/m.pt", line=0, column=0), _finding(path="nb.ipynb", line=2, column=9),
                _finding(path=".", line=0, column=0)]
    lines = github_annotations([_payload("high", findings)])
    assert "::error file=.,title=AIML101 unsafe-deserialization::pickle.load() unpickles%0AFix: Use safetensors." not in lines
    assert "::error title=AIML101 unsafe-deserialization::pickle.load() unpickles%0AFix: Use safetensors." in lines
    assert any(line.startswith("::error file=models/m.pt,title=") for line in lines)
    # A notebook line counts within its cell, so the annotation covers the whole file.
    assert any(line.startswith("::error file=nb.ipynb,title=") for line in lines)


def test_annotation_limits_per_level() -> None:
    errors = _payload("critical", [_finding(line=n) for n in range(1, 13)])
    warnings = _payload("medium", [_finding(line=n) for n in range(1, 4)], code="AIML203")
    notices = _payload("low", [_finding(line=n) for n in range(1, 11)], code="AIML401")
    lines = github_annotations([notices, warnings, errors])
    assert sum(line.startswith("::error ") for line in lines) == 10
    assert sum(line.startswith("::warning ") for line in lines) == 3
    # The summary takes one of the ten notice slots.
    assert sum(line.startswith("::notice") for line in lines) == 10
    assert lines[-1] == "::notice::pytest-aiml: 3 more findings not annotated; see the report"
    assert lines[0].startswith("::error file=src/load.py,line=1,")


def test_annotation_no_summary_when_all_fit() -> None:
    lines = github_annotations([_payload("low", [_finding(line=n) for n in range(1, 11)])])
    assert len(lines) == 10
    assert not any("not annotated" in line for line in lines)


def test_annotations_requested_by_option_or_env() -> None:
    assert annotations_requested(None, {"GITHUB_ACTIONS": "true"})
    assert not annotations_requested(None, {})
    assert not annotations_requested(None, {"GITHUB_ACTIONS": "false"})
    assert annotations_requested("github", {})
    assert not annotations_requested("none", {"GITHUB_ACTIONS": "true"})


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_annotations_printed_under_github_actions(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    shutil.copytree(BAD_REPO, pytester.path, dirs_exist_ok=True)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = pytester.runpytest(*RUN, *workers)
    commands = [line for line in result.outlines if line.startswith("::")]
    prompt = [line for line in commands if "title=AIML301" in line]
    assert len(prompt) == 1
    assert prompt[0].startswith("::error file=app/assistant.py,line=18,col=43,title=AIML301 prompt-injection::")
    flagged = (pytester.path / "app" / "assistant.py").read_text(encoding="utf-8").splitlines()[17]
    assert flagged[42:].startswith("system_prompt")
    assert sum(line.startswith("::error ") for line in commands) == 10
    assert commands[-1] == "::notice::pytest-aiml: 17 more findings not annotated; see the report"


def test_annotations_off_outside_github(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(BAD_REPO, pytester.path, dirs_exist_ok=True)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    result = pytester.runpytest(*RUN)
    assert not [line for line in result.outlines if line.startswith("::")]
    forced = pytester.runpytest(*RUN, "--aiml-annotations=github")
    assert [line for line in forced.outlines if line.startswith("::error ")]
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    disabled = pytester.runpytest(*RUN, "--aiml-annotations=none")
    assert not [line for line in disabled.outlines if line.startswith("::")]
