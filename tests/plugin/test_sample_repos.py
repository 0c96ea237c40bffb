"""End-to-end runs on the sample repositories under fixtures/, checked against the expected findings beside them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.report_validation import assert_valid_report

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SAMPLES = ["bad-ml-repo", "clean-ml-repo"]


def _expected(name: str) -> dict[str, Any]:
    return yaml.safe_load((FIXTURES / f"{name}.expected.yaml").read_text(encoding="utf-8"))


def _run(pytester: pytest.Pytester, name: str, *extra: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    shutil.copytree(FIXTURES / name, pytester.path, dirs_exist_ok=True)
    result = pytester.runpytest("--aiml", "--aiml-report=report.yaml", "-p", "no:cacheprovider", *extra)
    report = yaml.safe_load((pytester.path / "report.yaml").read_text(encoding="utf-8"))
    return result, report


def _observed(report: dict[str, Any]) -> dict[str, Any]:
    details = report["aiml_analysis"]["x_pytest_aiml"]
    failed = {
        item["nodeid"]: sorted(f"{f['path']}:{f['line']}:{f['column']} {f['code']}" for f in item["findings"])
        for item in details["items"]
        if item["outcome"] == "failed"
    }
    passed = sorted(item["nodeid"] for item in details["items"] if item["outcome"] == "passed")
    parse_errors = sorted(f"{error['path']}:{error['line']}" for error in details["parse_errors"])
    return {"failed": failed, "passed": passed, "parse_errors": parse_errors}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.parametrize("name", SAMPLES)
def test_sample_repository_findings(pytester: pytest.Pytester, name: str, workers: list[str]) -> None:
    result, report = _run(pytester, name, *workers)
    expected = _expected(name)
    observed = _observed(report)
    assert observed["failed"] == expected["failed"]
    assert observed["passed"] == sorted(expected["passed"])
    assert observed["parse_errors"] == sorted(expected["parse_errors"])
    assert_valid_report(report)
    result.assert_outcomes(
        failed=len(expected["failed"]) + len(expected["parse_errors"]),
        passed=len(expected["passed"]) + expected.get("user_tests_passed", 0),
    )


def test_bad_repository_report_sections(pytester: pytest.Pytester) -> None:
    _, report = _run(pytester, "bad-ml-repo")
    analysis = report["aiml_analysis"]
    assert analysis["frameworks"]["primary"] == "pytorch"
    assert analysis["mlops_maturity"]["level"] == "0"
    assert analysis["mlops_maturity"]["experiment_tracking"] == "none"
    assert analysis["llm_systems"]["present"] is True
    assert analysis["llm_systems"]["providers"] == ["openai"]
    assert analysis["inventory"]["total_notebooks"] == 1
    assert analysis["inventory"]["total_training_scripts"] == 1
    locations = [model["location"] for model in analysis["inventory"]["models"]]
    assert locations == ["models/churn.pt", "models/fraud.pkl"]
    priorities = [recommendation["priority"] for recommendation in analysis["recommendations"]]
    assert priorities == sorted(priorities, key=["critical", "high", "medium", "low"].index)
    assert priorities[0] == "critical"


def test_clean_repository_report_sections(pytester: pytest.Pytester) -> None:
    _, report = _run(pytester, "clean-ml-repo")
    analysis = report["aiml_analysis"]
    assert analysis["mlops_maturity"] == {
        "level": "1",
        "experiment_tracking": "mlflow",
        "model_registry": "mlflow",
        "version_control": "none",
        "ci_cd": "present",
    }
    assert analysis["recommendations"] == []
    assert analysis["serving"]["framework"] == "fastapi"
    assert analysis["inventory"]["models"][0]["version"] == "1.2.0"


def test_xdist_report_equals_serial_report(pytester: pytest.Pytester) -> None:
    shutil.copytree(FIXTURES / "bad-ml-repo", pytester.path, dirs_exist_ok=True)
    pytester.runpytest("--aiml", "--aiml-report=serial.yaml", "-p", "no:cacheprovider")
    pytester.runpytest("--aiml", "--aiml-report=xdist.yaml", "-n", "2", "-p", "no:cacheprovider")
    serial = (pytester.path / "serial.yaml").read_text(encoding="utf-8")
    xdist = (pytester.path / "xdist.yaml").read_text(encoding="utf-8")
    assert xdist == serial
