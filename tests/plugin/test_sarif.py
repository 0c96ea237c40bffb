"""The SARIF log of --aiml-sarif: valid against the OASIS schema, with suppressions, stable across runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_aiml.engine.baseline import finding_fingerprint
from pytest_aiml.engine.registry import builtin_rules
from pytest_aiml.report.sarif import FINGERPRINT_KEY, build_sarif

ROOT = Path(__file__).resolve().parents[2]
BAD_REPO = ROOT / "fixtures" / "bad-ml-repo"
SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
XDIST = pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])

INLINE_REASON = "the image bakes this pickle in at build time from a signed source"
CONFIG_REASON = "the churn model is documented in the team wiki"
CONFIG_WAIVER = f"""
[tool.pytest-aiml]
waivers = [{{ rules = ["AIML704"], paths = ["models/churn.pt"], reason = "{CONFIG_REASON}" }}]
"""


def _copy_bad_repo(pytester: pytest.Pytester) -> None:
    """Copy the bad sample repository, adding an inline and a config waiver."""
    shutil.copytree(BAD_REPO, pytester.path, dirs_exist_ok=True)
    flask = pytester.path / "app" / "serve_flask.py"
    lines = flask.read_text(encoding="utf-8").splitlines()
    assert lines[8].strip() == "fraud_model = pickle.load(stream)"
    lines[8] += f"  # aiml: waive[AIML101] {INLINE_REASON}"
    flask.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pyproject = pytester.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + CONFIG_WAIVER, encoding="utf-8")


def _run(pytester: pytest.Pytester, *extra: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = pytester.runpytest("--aiml-only", "--aiml-sarif=out/aiml.sarif", "-p", "no:cacheprovider", *extra)
    log = json.loads((pytester.path / "out" / "aiml.sarif").read_text(encoding="utf-8"))
    return result, log


def _by_location(log: dict[str, Any]) -> dict[str, dict[str, Any]]:
    results = {}
    for result in log["runs"][0]["results"]:
        physical = result["locations"][0]["physicalLocation"]
        line = physical.get("region", {}).get("startLine", 0)
        results[f"{physical['artifactLocation']['uri']}:{line} {result['ruleId']}"] = result
    return results


@XDIST
def test_sarif_validates_against_schema(pytester: pytest.Pytester, workers: list[str]) -> None:
    _copy_bad_repo(pytester)
    result, log = _run(pytester, *workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    jsonschema.validate(log, SCHEMA)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "pytest-aiml"
    [invocation] = run["invocations"]
    assert invocation["executionSuccessful"] is True
    # app/broken_features.py has a syntax error: it is reported as a notification, not a result.
    [notification] = invocation["toolExecutionNotifications"]
    location = notification["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "app/broken_features.py"
    assert location["region"]["startLine"] == 6


@XDIST
def test_sarif_waived_findings_suppressed(pytester: pytest.Pytester, workers: list[str]) -> None:
    _copy_bad_repo(pytester)
    _, log = _run(pytester, *workers)
    results = _by_location(log)
    inline = results["app/serve_flask.py:9 AIML101"]
    assert inline["suppressions"] == [{"kind": "inSource", "justification": INLINE_REASON}]
    config = results["models/churn.pt:0 AIML704"]
    assert config["suppressions"] == [{"kind": "external", "justification": CONFIG_REASON}]
    active = results["app/serve_flask.py:9 AIML201"]
    assert "suppressions" not in active
    assert "suppressions" not in results["models/fraud.pkl:0 AIML704"]


def test_sarif_rules_and_locations(pytester: pytest.Pytester) -> None:
    _copy_bad_repo(pytester)
    _, log = _run(pytester)
    run = log["runs"][0]
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    unsafe = rules["AIML101"]
    assert unsafe["name"] == "unsafe-deserialization"
    assert unsafe["defaultConfiguration"] == {"level": "error"}
    assert unsafe["properties"] == {"tags": ["security"], "precision": "high", "security-severity": "9.0"}
    assert unsafe["help"]["text"] == builtin_rules().get("AIML101").fix
    # Rules whose items passed are described too, so code scanning knows every rule that ran.
    assert "AIML203" in rules
    assert "security-severity" not in rules["AIML203"]["properties"]
    results = _by_location(log)
    located = results["train.py:13 AIML101"]
    assert located["level"] == "error"
    region = located["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 13, "startColumn": 27}
    assert run["tool"]["driver"]["rules"][located["ruleIndex"]]["id"] == "AIML101"
    artifact = results["models/fraud.pkl:0 AIML704"]
    assert "region" not in artifact["locations"][0]["physicalLocation"]
    assert artifact["level"] == "warning"
    notebook = results["notebooks/explore.ipynb:0 AIML101"]
    assert notebook["message"]["text"].startswith("cell 2: ")


def test_sarif_identical_serial_and_xdist(pytester: pytest.Pytester) -> None:
    _copy_bad_repo(pytester)
    _, serial = _run(pytester)
    _, parallel = _run(pytester, "-n", "2")
    assert serial == parallel


def test_sarif_path_needs_equals_sign(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(train="import torch\n")
    result = pytester.runpytest("--aiml", "--aiml-sarif", "aiml.sarif", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*write --aiml-sarif=PATH with '='*"])


def _payload(**overrides: Any) -> dict[str, Any]:
    rule = builtin_rules().get("AIML101")
    finding = {"code": "AIML101", "path": "my dir/load.py", "line": 3, "column": 5,
               "message": "pickle.load() unpickles its input", "snippet": "pickle.load(f)", "statement_line": 3}
    payload = {
        "code": rule.code, "slug": rule.slug, "target": "my dir/load.py", "priority": rule.priority.value,
        "category": rule.category.value, "message": rule.message, "impact": rule.impact, "fix": rule.fix,
        "findings": [], "waived": [], "baselined": [finding],
    }
    payload.update(overrides)
    return payload


def test_build_sarif_baselined_finding() -> None:
    log = build_sarif([_payload()], builtin_rules(), tool_version="0.1.0")
    jsonschema.validate(log, SCHEMA)
    [result] = log["runs"][0]["results"]
    assert result["suppressions"] == [{"kind": "external", "justification": "recorded in the pytest-aiml baseline"}]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "my%20dir/load.py"
    expected = finding_fingerprint(_payload()["baselined"][0])
    assert result["partialFingerprints"] == {FINGERPRINT_KEY: expected}


def test_build_sarif_parse_error_and_interruption() -> None:
    parse_error = {"parse_error": {"path": "broken.py", "line": 2, "column": 1, "reason": "invalid syntax"},
                   "rules": ["AIML101"]}
    log = build_sarif([parse_error], builtin_rules(), tool_version="0.1.0", interrupted=True)
    jsonschema.validate(log, SCHEMA)
    run = log["runs"][0]
    assert run["results"] == []
    assert run["tool"]["driver"]["rules"] == []
    [invocation] = run["invocations"]
    assert invocation["executionSuccessful"] is False
    [notification] = invocation["toolExecutionNotifications"]
    assert notification["level"] == "error"
    assert "invalid syntax" in notification["message"]["text"]
