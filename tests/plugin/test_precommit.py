"""The pre-commit hook: its command, run on changed files, checks only those files."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BAD_REPO = ROOT / "fixtures" / "bad-ml-repo"


def _hook() -> dict:
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    return hook


def _hook_arguments() -> list[str]:
    command = shlex.split(_hook()["entry"])
    assert command[0] == "pytest"
    return command[1:]


def test_hook_definition() -> None:
    hook = _hook()
    assert hook["id"] == "pytest-aiml"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True
    assert hook["types"] == ["python"]


def test_hook_checks_only_named_files(pytester: pytest.Pytester) -> None:
    shutil.copytree(BAD_REPO, pytester.path, dirs_exist_ok=True)
    result = pytester.runpytest(*_hook_arguments(), "train.py", "app/serve_flask.py")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # Only the two files' items run: seven fail, and AIML501 passes on train.py.
    result.assert_outcomes(failed=7, passed=1)
    nodeids = [line for line in result.outlines if line.startswith("FAILED ")]
    assert all(line.split()[1].split("::")[0] in ("train.py", "app/serve_flask.py") for line in nodeids)
    # Repository rules need the whole repository, so the hook does not run them.
    assert not any("AIML401" in line for line in result.outlines)


def test_hook_passes_files_without_rules(pytester: pytest.Pytester) -> None:
    shutil.copytree(BAD_REPO, pytester.path, dirs_exist_ok=True)
    pytester.makepyfile(constants="LEARNING_RATE = 0.1\n")
    result = pytester.runpytest(*_hook_arguments(), "constants.py")
    assert result.ret == pytest.ExitCode.OK
