"""The runnable examples under docs/examples/ behave as the documentation describes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_aiml.engine.examples import run_example

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def test_user_strategies_example_passes(pytester: pytest.Pytester) -> None:
    shutil.copy(EXAMPLES / "test_user_strategies.py", pytester.path / "test_user_strategies.py")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    assert result.parseoutcomes()["passed"] >= 1


def test_custom_rule_example_flags_download(pytester: pytest.Pytester) -> None:
    shutil.copy(EXAMPLES / "custom_rule_conftest.py", pytester.path / "conftest.py")
    pytester.makepyfile(fetch="import requests\n\nweights = requests.get('https://example.invalid/w.bin', verify=False)\n")
    result = pytester.runpytest("--aiml-only", "--aiml-select=AIML901", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["fetch.py:3:11 AIML901 *"])
    assert result.parseoutcomes()["failed"] == 1


def test_custom_rule_example_own_examples() -> None:
    namespace: dict = {}
    source = (EXAMPLES / "custom_rule_conftest.py").read_text(encoding="utf-8")
    exec(compile(source, "custom_rule_conftest.py", "exec"), namespace)
    rule = namespace["UnverifiedDownload"]
    for example in rule.INVALID:
        assert run_example(rule, example), example.source
    for example in rule.VALID:
        assert run_example(rule, example) == [], example.source


def test_example_warm_run_skips_libcst(pytester: pytest.Pytester) -> None:
    # The example reads libcst through the engine's lazy module, so a run that takes every
    # result from the cache imports none of it, even with pytest scanning the conftest.py.
    shutil.copy(EXAMPLES / "custom_rule_conftest.py", pytester.path / "conftest.py")
    pytester.makepyfile(
        fetch="import requests\n\nweights = requests.get('https://example.invalid/w.bin', verify=False)\n",
        libcst_probe="import sys\n\n\ndef pytest_unconfigure(config):\n    print('libcst imported:', 'libcst' in sys.modules)\n",
    )
    arguments = ("--aiml-only", "--aiml-select=AIML901", "-p", "libcst_probe", "-p", "no:randomly", "fetch.py")
    pytester.runpytest_subprocess(*arguments).assert_outcomes(failed=1)
    warm = pytester.runpytest_subprocess(*arguments)
    warm.assert_outcomes(failed=1)
    warm.stdout.fnmatch_lines(["fetch.py:3:11 AIML901 *", "libcst imported: False"])
