"""AIML104 and AIML105: the shipped advisory table, version ranges, pin lines and messages."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from packaging.version import Version

from pytest_aiml.engine.discovery import discover
from pytest_aiml.engine.inventory import build_inventory
from pytest_aiml.rules.advisories import (
    SEVERITIES,
    OutdatedDependency,
    VulnerableDependency,
    advisory_table,
    parse_table,
    pin_line,
)

#: Packages the table must cover, by their canonical distribution names.
COVERED = (
    "torch", "transformers", "langchain", "langchain-core", "llama-index", "mlflow", "scikit-learn", "numpy",
    "pillow", "onnx", "keras", "flask", "starlette", "fastapi", "gradio", "streamlit", "requests", "pyyaml",
)


def _findings(tmp_path, files: dict[str, str]):
    for relative, content in files.items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    inventory = build_inventory(discover(tmp_path))
    return list(VulnerableDependency().check(inventory)) + list(OutdatedDependency().check(inventory))


def test_table_ships_with_package():
    text = resources.files("pytest_aiml").joinpath("data/advisories.json").read_text(encoding="utf-8")
    document = json.loads(text)
    assert document["built"] == advisory_table().built
    assert len(advisory_table().advisories) == len(document["advisories"])


@pytest.mark.parametrize("package", COVERED)
def test_table_covers_package(package):
    assert advisory_table().for_package(package), f"no advisory for {package}"


def test_table_entries_are_complete():
    for advisory in advisory_table().advisories:
        assert advisory.severity in SEVERITIES
        assert advisory.url.startswith("https://")
        assert all(identifier.startswith(("GHSA-", "CVE-", "PYSEC-")) for identifier in advisory.ids)
        for affected in advisory.ranges:
            assert affected.introduced is None or affected.introduced < affected.fixed, advisory.ids


def test_invalid_entry_names_its_index():
    document = {"built": "2026-12-04", "advisories": [
        {"package": "torch", "ranges": [{"introduced": "0", "fixed": "2.6.0"}], "ids": ["CVE-1"],
         "severity": "severe", "url": "https://x", "summary": "s"},
    ]}
    with pytest.raises(ValueError, match="advisory entry 0 .* severity 'severe'"):
        parse_table(document)


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("2.2.4", True), ("2.2.5", False), ("2.2.5.post1", False), ("2.3.0rc1", False),
        ("2.3.0", True), ("2.3.1", True), ("2.3.2", False), ("3.0.0", False), ("1.0", True),
    ],
)
def test_flask_two_ranges(version, affected):
    advisory = next(a for a in advisory_table().for_package("flask") if "CVE-2023-30861" in a.ids)
    assert (advisory.range_containing(Version(version)) is not None) is affected


@pytest.mark.parametrize(
    ("version", "affected"),
    [("2.6.0rc1", True), ("2.5.1+cu121", True), ("2.6.0", False), ("2.6.0+cpu", False), ("2.5.99.dev0", True)],
)
def test_torch_pre_and_local_versions(version, affected):
    advisory = next(a for a in advisory_table().for_package("torch") if "CVE-2025-32434" in a.ids)
    assert (advisory.range_containing(Version(version)) is not None) is affected


def test_message_names_pin_ids_and_fix(tmp_path):
    findings = _findings(tmp_path, {"requirements.txt": "# serving\nmlflow==2.9.1\n"})
    assert [finding.code for finding in findings] == ["AIML104"]
    finding = findings[0]
    assert (finding.path, finding.line, finding.column) == ("requirements.txt", 2, 1)
    assert finding.message.startswith("mlflow==2.9.1 is affected by 3 advisories: ")
    assert "GHSA-v945-r3rc-6fjm/CVE-2023-6753 (critical, fixed in 2.9.2)" in finding.message
    assert "CVE-2024-2928 (high, fixed in 2.11.3)" in finding.message
    assert finding.message.endswith("upgrade to 2.11.3 or later")
    assert finding.snippet == "mlflow==2.9.1"


def test_one_finding_per_pin_in_each_file(tmp_path):
    files = {"requirements.txt": "torch==2.1.0\n", "serving/requirements.txt": "torch==2.1.0\ntorch==2.1.0\n"}
    findings = _findings(tmp_path, files)
    assert sorted((finding.path, finding.line) for finding in findings) == [
        ("requirements.txt", 1), ("serving/requirements.txt", 1),
    ]


def test_requirements_folder_pins_are_read(tmp_path):
    files = {"requirements/prod.txt": "mlflow==2.9.1\n", "requirements/serving/api.txt": "torch==2.1.0\n"}
    findings = _findings(tmp_path, files)
    assert sorted((finding.path, finding.snippet) for finding in findings) == [
        ("requirements/prod.txt", "mlflow==2.9.1"), ("requirements/serving/api.txt", "torch==2.1.0"),
    ]


def test_severity_splits_between_rules(tmp_path):
    findings = _findings(tmp_path, {"requirements.txt": "requests==2.28.1\npyyaml==5.3\n"})
    assert {(finding.code, finding.line) for finding in findings} == {("AIML105", 1), ("AIML104", 2)}


def test_unpinned_and_ranges_ignored(tmp_path):
    files = {"requirements.txt": "torch\ntransformers>=4.0\nmlflow!=2.9.1\nnumpy==1.*\n"}
    assert _findings(tmp_path, files) == []


def test_uv_lock_pin_line(tmp_path):
    lock = '[[package]]\nname = "gradio"\nversion = "4.10.0"\nsource = { registry = "https://pypi.org/simple" }\n'
    findings = _findings(tmp_path, {"uv.lock": lock})
    assert [(finding.code, finding.line) for finding in findings] == [("AIML104", 2)]
    assert "gradio==4.10.0" in findings[0].message


def test_pin_line_ignores_similar_names():
    text = "torchvision==2.1.0\ntorch-audio==2.1.0\ntorch==2.1.0\n"
    assert pin_line(text, "torch", Version("2.1.0")) == 3


def test_pin_line_unknown_is_zero():
    assert pin_line("other==1.0\n", "torch", Version("2.1.0")) == 0
