"""The data rules on small repositories: PII findings, their masking in every output, and data validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_aiml.engine.discovery import discover
from pytest_aiml.engine.inventory import build_inventory
from pytest_aiml.rules.data import NoDataValidation, PiiInData

XDIST = pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])

#: Raw values of the sample repository; none may appear in any output.
RAW_VALUES = (
    "ann.lee@gmail.com", "bo.chan@yahoo.co.uk", "4242 4242 4242 4242", "5555-5555-5555-4444",
    "123-45-6789", "+44 20 7946 0958", "GB82 WEST 1234 5698 7654 32", "8.8.8.8", "203.45.67.89",
)
CUSTOMERS = (
    "id,email,card,ssn,phone,iban,last_ip\n"
    "1,ann.lee@gmail.com,4242 4242 4242 4242,123-45-6789,+44 20 7946 0958,GB82 WEST 1234 5698 7654 32,8.8.8.8\n"
    "2,bo.chan@yahoo.co.uk,5555-5555-5555-4444,,,,203.45.67.89\n"
)
TRAIN = (
    "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n\n"
    "df = pd.read_csv('data/customers.csv')\nLogisticRegression().fit(df[['id']], df['id'])\n"
)


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


def _findings(root: Path, rule: type, files: dict[str, str]) -> list:
    _write(root, files)
    return list(rule().check(build_inventory(discover(root))))


def test_pii_finding_per_column_and_kind(tmp_path: Path) -> None:
    findings = _findings(tmp_path, PiiInData, {"data/customers.csv": CUSTOMERS})
    assert [finding.message.split(" contains ")[0] for finding in findings] == [
        "column 'email'", "column 'card'", "column 'ssn'", "column 'phone'", "column 'iban'", "column 'last_ip'",
    ]
    assert {(finding.path, finding.line, finding.snippet) for finding in findings} == {("data/customers.csv", 2, "")}
    email = findings[0].message
    assert email == "column 'email' contains e-mail addresses (2 of 2 sampled rows), first at row 1 (line 2): a***@g***.com"


def test_pii_messages_never_hold_raw_values(tmp_path: Path) -> None:
    findings = _findings(tmp_path, PiiInData, {"data/customers.csv": CUSTOMERS})
    for finding in findings:
        for value in RAW_VALUES:
            assert value not in finding.render()


def test_pii_handled_by_hashing_all_flagged_columns(tmp_path: Path) -> None:
    files = {
        "data/users.csv": "id,email\n1,ann.lee@gmail.com\n2,bo.chan@yahoo.co.uk\n",
        "prep.py": "import hashlib\nimport pandas as pd\ndf = pd.read_csv('data/users.csv')\n"
        "df['email'] = df['email'].map(lambda v: hashlib.sha256(v.encode()).hexdigest())\n",
    }
    assert _findings(tmp_path, PiiInData, files) == []


def test_pii_handling_in_tests_does_not_count(tmp_path: Path) -> None:
    files = {
        "data/users.csv": "id,email\n1,ann.lee@gmail.com\n2,bo.chan@yahoo.co.uk\n",
        "tests/test_prep.py": "import scrubadub\nopen('data/users.csv')\n",
    }
    assert len(_findings(tmp_path, PiiInData, files)) == 1


def test_pii_handling_must_name_the_file(tmp_path: Path) -> None:
    files = {
        "data/users.csv": "id,email\n1,ann.lee@gmail.com\n2,bo.chan@yahoo.co.uk\n",
        "prep.py": "from presidio_analyzer import AnalyzerEngine\nopen('data/other.csv')\n",
    }
    assert len(_findings(tmp_path, PiiInData, files)) == 1


def test_validation_lists_five_loaders(tmp_path: Path) -> None:
    files = {f"jobs/load_{index}.py": "import torch\nimport pandas as pd\ndf = pd.read_parquet('x')\n" for index in range(7)}
    (finding,) = _findings(tmp_path, NoDataValidation, files)
    assert finding.path == "jobs/load_0.py"
    assert "data is loaded in 7 modules (jobs/load_0.py" in finding.message
    assert "jobs/load_4.py and 2 more" in finding.message


def test_validation_evidently_pin_alone_not_enough(tmp_path: Path) -> None:
    files = {"train.py": TRAIN, "requirements.txt": "evidently==0.4.0\n"}
    assert len(_findings(tmp_path, NoDataValidation, files)) == 1


def test_validation_evidently_test_suite_counts(tmp_path: Path) -> None:
    files = {"train.py": TRAIN, "monitor.py": "from evidently.test_suite import TestSuite\nsuite = TestSuite(tests=[])\n"}
    assert _findings(tmp_path, NoDataValidation, files) == []


@XDIST
def test_pii_never_printed_or_written(pytester: pytest.Pytester, workers: list[str]) -> None:
    _write(pytester.path, {"data/customers.csv": CUSTOMERS, "train.py": TRAIN})
    result = pytester.runpytest(
        "--aiml-only", "--aiml-select=AIML601", "-vv", "-rA", "-p", "no:cacheprovider",
        "--aiml-report=out/report.yaml", "--aiml-sarif=out/aiml.sarif", "--junitxml=out/junit.xml", *workers,
    )
    result.assert_outcomes(failed=1)
    outputs = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        "report": (pytester.path / "out" / "report.yaml").read_text(encoding="utf-8"),
        "sarif": (pytester.path / "out" / "aiml.sarif").read_text(encoding="utf-8"),
        "junit": (pytester.path / "out" / "junit.xml").read_text(encoding="utf-8"),
    }
    # The findings are there, masked: otherwise the checks below would prove nothing.
    for name in ("stdout", "report", "sarif", "junit"):
        assert "a***@g***.com" in outputs[name], name
        assert "**** **** **** 4242" in outputs[name], name
    for name, text in outputs.items():
        for value in RAW_VALUES:
            assert value not in text, f"{value!r} appears in {name}"
