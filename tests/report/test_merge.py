"""``python -m pytest_aiml merge-reports``: sharded runs of the sample repository merged into one report."""

from __future__ import annotations

import copy
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_aiml import __version__
from pytest_aiml.__main__ import main
from pytest_aiml.report.merge import ReportError, merge_reports, validate_report
from tests.report_validation import assert_valid_report

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "bad-ml-repo"
RUN = ("--aiml-only", "-p", "no:cacheprovider", "-p", "no:randomly")
#: The sharding recipe of docs/performance.md: shards name top-level folders or files,
#: and one shard runs the repository items and the files at the top level.
SHARDS = {
    "app": ("app",),
    "rest": ("train.py", "notebooks", "models"),
    "top-level": ("-k", "not /"),
}
WAIVERS = """
[[tool.pytest-aiml.waivers]]
rules = ["AIML201"]
paths = ["app/**"]
reason = "the deployment mounts these paths"

[[tool.pytest-aiml.waivers]]
rules = ["AIML203"]
paths = ["legacy/**"]
reason = "matches nothing, so it is stale"
"""


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _pytester_report(pytester: pytest.Pytester, name: str, *args: str) -> Path:
    result = pytester.runpytest(*RUN, f"--aiml-report={name}.yaml", *args)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()
    return pytester.path / f"{name}.yaml"


def _sharded_and_full(pytester: pytest.Pytester) -> tuple[dict[str, Any], list[Path]]:
    full = _load(_pytester_report(pytester, "full"))
    shards = [_pytester_report(pytester, name, *args) for name, args in SHARDS.items()]
    return full, shards


def _merge_files(output: Path, inputs: list[Path], *options: str) -> dict[str, Any]:
    status = main(["merge-reports", str(output), *map(str, inputs), *options])
    assert status == 0
    return _load(output)


def test_merged_shards_equal_full_run(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(SAMPLE, pytester.path, dirs_exist_ok=True)
    full, shards = _sharded_and_full(pytester)
    merged = _merge_files(pytester.path / "merged.yaml", shards, "--complete")

    analysis, expected = merged["aiml_analysis"], full["aiml_analysis"]
    assert analysis["recommendations"] == expected["recommendations"]
    assert analysis["x_pytest_aiml"]["items"] == expected["x_pytest_aiml"]["items"]
    assert analysis["x_pytest_aiml"]["findings_by_priority"] == expected["x_pytest_aiml"]["findings_by_priority"]
    assert analysis["x_pytest_aiml"]["parse_errors"] == expected["x_pytest_aiml"]["parse_errors"]
    assert analysis["inventory"] == expected["inventory"]
    assert merged == full
    assert_valid_report(merged)
    assert "warning" not in capsys.readouterr().err


def test_shards_alone_miss_repository_items(pytester: pytest.Pytester) -> None:
    shutil.copytree(SAMPLE, pytester.path, dirs_exist_ok=True)
    path_shards = [_pytester_report(pytester, name, *SHARDS[name]) for name in ("app", "rest")]
    merged = merge_reports([_load(path) for path in path_shards])
    nodeids = {item["nodeid"] for item in merged["aiml_analysis"]["x_pytest_aiml"]["items"]}
    assert ".::AIML401-no-experiment-tracking" not in nodeids
    top_level = _load(_pytester_report(pytester, "top-level", *SHARDS["top-level"]))
    top_level_ids = {item["nodeid"] for item in top_level["aiml_analysis"]["x_pytest_aiml"]["items"]}
    assert ".::AIML401-no-experiment-tracking" in top_level_ids
    assert all(nodeid.startswith((".::", "train.py::")) for nodeid in top_level_ids)


def test_merge_without_complete_flag_is_partial(pytester: pytest.Pytester) -> None:
    shutil.copytree(SAMPLE, pytester.path, dirs_exist_ok=True)
    full, shards = _sharded_and_full(pytester)
    merged = _merge_files(pytester.path / "merged.yaml", shards)
    details = merged["aiml_analysis"]["x_pytest_aiml"]
    assert details["complete_run"] is False
    assert details["interrupted"] is False
    assert details["items"] == full["aiml_analysis"]["x_pytest_aiml"]["items"]


def test_merged_waivers_equal_full_run(pytester: pytest.Pytester) -> None:
    shutil.copytree(SAMPLE, pytester.path, dirs_exist_ok=True)
    pyproject = pytester.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + WAIVERS, encoding="utf-8")
    full, shards = _sharded_and_full(pytester)
    merged = _merge_files(pytester.path / "merged.yaml", shards, "--complete")

    details, expected = merged["aiml_analysis"]["x_pytest_aiml"], full["aiml_analysis"]["x_pytest_aiml"]
    assert expected["stale_waivers"] == ["pyproject.toml waivers[2]"]
    assert details["stale_waivers"] == expected["stale_waivers"]
    assert details["waivers"] == expected["waivers"]
    assert details["waived_findings_by_rule"] == expected["waived_findings_by_rule"]
    assert expected["waived_findings_by_rule"]["AIML201"] > 0
    assert merged == full
    assert_valid_report(merged)


# -- merge rules on real reports, edited to show one case each ---------------------------


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Return the full run's report and each shard's, from pytest runs in subprocesses."""
    repository = tmp_path_factory.mktemp("repository")
    shutil.copytree(SAMPLE, repository, dirs_exist_ok=True)
    found = {}
    for name, args in {"full": (), **SHARDS}.items():
        command = [sys.executable, "-m", "pytest", *RUN, f"--aiml-report={name}.yaml", *args]
        completed = subprocess.run(command, cwd=repository, capture_output=True, text=True, timeout=120)
        assert completed.returncode in (0, 1), completed.stdout + completed.stderr
        found[name] = _load(repository / f"{name}.yaml")
    return found


def _details(document: dict[str, Any]) -> dict[str, Any]:
    return document["aiml_analysis"]["x_pytest_aiml"]


def _item(document: dict[str, Any], nodeid: str) -> dict[str, Any]:
    return next(item for item in _details(document)["items"] if item["nodeid"] == nodeid)


def _shards(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [copy.deepcopy(reports[name]) for name in SHARDS]


FAILING = "app/serve_flask.py::AIML201-hardcoded-model-path"


@pytest.mark.parametrize("failed_first", [True, False], ids=["failed-first", "failed-second"])
def test_duplicate_item_failed_wins(
    reports: dict[str, dict[str, Any]], failed_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    failed = copy.deepcopy(reports["app"])
    passed = copy.deepcopy(reports["app"])
    item = _item(passed, FAILING)
    item["outcome"], item["findings"] = "passed", []
    passed["aiml_analysis"]["recommendations"] = [
        recommendation for recommendation in passed["aiml_analysis"]["recommendations"]
        if "app/serve_flask.py:9 [AIML201]" not in recommendation["issue"]
    ]
    documents = [failed, passed] if failed_first else [passed, failed]
    with caplog.at_level(logging.WARNING, logger="pytest_aiml.report.merge"):
        merged = merge_reports(documents)

    assert _item(merged, FAILING) == _item(reports["app"], FAILING)
    assert merged["aiml_analysis"]["recommendations"] == reports["app"]["aiml_analysis"]["recommendations"]
    assert _details(merged)["findings_by_priority"] == _details(reports["app"])["findings_by_priority"]
    assert FAILING in caplog.text


def test_dropped_version_loses_its_recommendation(reports: dict[str, dict[str, Any]]) -> None:
    failed = copy.deepcopy(reports["app"])
    failed_item = _item(failed, FAILING)
    skipped = copy.deepcopy(reports["app"])
    skipped_item = _item(skipped, FAILING)
    # An item whose findings differ in the second report, and which did not fail there.
    skipped_item["outcome"] = "skipped"
    skipped_item["findings"] = [dict(failed_item["findings"][0], line=99)]
    for recommendation in skipped["aiml_analysis"]["recommendations"]:
        recommendation["issue"] = recommendation["issue"].replace("serve_flask.py:9 [AIML201]", "serve_flask.py:99 [AIML201]")
    merged = merge_reports([skipped, failed])
    issues = [recommendation["issue"] for recommendation in merged["aiml_analysis"]["recommendations"]]
    assert not any("serve_flask.py:99" in issue for issue in issues)
    assert any("serve_flask.py:9 [AIML201]" in issue for issue in issues)


def test_repository_section_disagreement_warns(
    reports: dict[str, dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    first, second, third = _shards(reports)
    second["aiml_analysis"]["frameworks"]["primary"] = "tensorflow"
    with caplog.at_level(logging.WARNING, logger="pytest_aiml.report.merge"):
        merged = merge_reports([first, second, third], names=["a.yaml", "b.yaml", "c.yaml"])
    assert merged["aiml_analysis"]["frameworks"]["primary"] == "pytorch"
    assert "frameworks differs between a.yaml and b.yaml" in caplog.text


def test_measured_throughput_is_not_a_disagreement(
    reports: dict[str, dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    first, second, third = _shards(reports)
    first["aiml_analysis"]["serving"]["throughput"] = "churn: 950/s (cpu, batch 1)"
    second["aiml_analysis"]["serving"]["throughput"] = "churn: 1010/s (cpu, batch 1)"
    with caplog.at_level(logging.WARNING, logger="pytest_aiml.report.merge"):
        merged = merge_reports([first, second, third])
    assert merged["aiml_analysis"]["serving"]["throughput"] == "churn: 950/s (cpu, batch 1)"
    assert caplog.text == ""


def test_models_come_from_inspecting_shard(reports: dict[str, dict[str, Any]]) -> None:
    app, rest, top_level = _shards(reports)
    full_models = reports["full"]["aiml_analysis"]["inventory"]["models"]
    assert app["aiml_analysis"]["inventory"]["models"] != full_models
    merged = merge_reports([app, top_level, rest])
    assert merged["aiml_analysis"]["inventory"]["models"] == full_models


def test_interrupted_shard_makes_merge_partial(reports: dict[str, dict[str, Any]]) -> None:
    shards = _shards(reports)
    _details(shards[1])["interrupted"] = True
    merged = merge_reports(shards, assume_complete=True)
    assert _details(merged)["interrupted"] is True
    assert _details(merged)["complete_run"] is False


def test_complete_shard_makes_merge_complete(reports: dict[str, dict[str, Any]]) -> None:
    merged = merge_reports([copy.deepcopy(reports["app"]), copy.deepcopy(reports["full"])])
    assert _details(merged)["complete_run"] is True
    assert _details(merged)["items"] == _details(reports["full"])["items"]


def test_different_rule_sets_are_partial(reports: dict[str, dict[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    shards = _shards(reports)
    _details(shards[2])["rules"] = ["AIML401"]
    _details(shards[0])["rules"] = [code for code in _details(shards[0])["rules"] if code != "AIML401"]
    with caplog.at_level(logging.WARNING, logger="pytest_aiml.report.merge"):
        merged = merge_reports(shards, assume_complete=True)
    assert _details(merged)["complete_run"] is False
    assert _details(merged)["rules"] == _details(reports["full"])["rules"]
    assert "ran other rules" in caplog.text


def _waiver(origin: str, findings: list[str]) -> dict[str, Any]:
    return {
        "origin": origin, "source": "pyproject.toml", "rules": ["AIML201"], "paths": [], "reason": "test",
        "expires": None, "findings": findings,
    }


def _with_waivers(
    document: dict[str, Any], waivers: list[dict[str, Any]], *, complete: bool, stale: list[str]
) -> dict[str, Any]:
    edited = copy.deepcopy(document)
    details = _details(edited)
    details.update(waivers=waivers, complete_run=complete, stale_waivers=stale)
    return edited


def test_waiver_stale_only_if_stale_everywhere(reports: dict[str, dict[str, Any]]) -> None:
    first = _with_waivers(
        reports["app"], [_waiver("w1", []), _waiver("w2", [])], complete=True, stale=["w1", "w2"]
    )
    second = _with_waivers(
        reports["rest"], [_waiver("w1", ["train.py:13 AIML201"]), _waiver("w2", [])], complete=True, stale=["w2"]
    )
    merged = merge_reports([first, second])
    assert _details(merged)["stale_waivers"] == ["w2"]


def test_partial_shards_use_waiver_by_findings(reports: dict[str, dict[str, Any]]) -> None:
    first = _with_waivers(reports["app"], [_waiver("w1", []), _waiver("w2", [])], complete=False, stale=[])
    second = _with_waivers(
        reports["rest"], [_waiver("w1", ["train.py:13 AIML201"]), _waiver("w2", [])], complete=False, stale=[]
    )
    _details(second)["expired_waivers"] = []
    assert _details(merge_reports([first, second]))["stale_waivers"] == []
    merged = merge_reports([first, second], assume_complete=True)
    assert _details(merged)["stale_waivers"] == ["w2"]
    assert _details(merged)["waivers"][0]["findings"] == ["train.py:13 AIML201"]


def test_expired_waiver_is_not_stale(reports: dict[str, dict[str, Any]]) -> None:
    first = _with_waivers(reports["app"], [_waiver("w1", [])], complete=False, stale=[])
    _details(first)["expired_waivers"] = ["w1"]
    merged = merge_reports([first], assume_complete=True)
    assert _details(merged)["stale_waivers"] == []
    assert _details(merged)["expired_waivers"] == ["w1"]


def test_overlapping_shards_count_waived_once(reports: dict[str, dict[str, Any]]) -> None:
    covered = ["train.py:13 AIML201", "train.py:20 AIML201", "train.py:20 AIML201"]
    first = _with_waivers(reports["rest"], [_waiver("w1", covered)], complete=False, stale=[])
    second = _with_waivers(reports["top-level"], [_waiver("w1", covered[:2])], complete=False, stale=[])
    merged = merge_reports([first, second])
    assert _details(merged)["waivers"][0]["findings"] == sorted(covered)
    assert _details(merged)["waived_findings_by_rule"] == {"AIML201": 3}


def test_baseline_entries_give_disappeared(reports: dict[str, dict[str, Any]]) -> None:
    shards = _shards(reports)
    entries = [{"fingerprint": "0123456789abcdef", "code": "AIML101", "path": "gone.py", "message": "m"}]
    merged = merge_reports(shards, assume_complete=True, baseline_entries=entries)
    assert _details(merged)["baseline_disappeared"] == entries
    assert _details(merge_reports(shards, baseline_entries=entries))["baseline_disappeared"] == []


def test_merge_of_nothing_is_rejected() -> None:
    with pytest.raises(ReportError, match="no report"):
        merge_reports([])


def test_invalid_merged_report_is_rejected(reports: dict[str, dict[str, Any]]) -> None:
    document = copy.deepcopy(reports["full"])
    document["aiml_analysis"]["recommendations"][0]["priority"] = "urgent"
    with pytest.raises(ReportError, match="recommendations.0.priority"):
        validate_report(document)


# -- the command line -------------------------------------------------------------------


def _write(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "report not found"),
        ("aiml_analysis: [unclosed", "invalid YAML"),
        ("name: another tool's report\n", "not a pytest-aiml report"),
    ],
    ids=["missing", "invalid-yaml", "foreign"],
)
def test_cli_bad_input_exits_2(
    tmp_path: Path, reports: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    good = _write(tmp_path / "good.yaml", reports["app"])
    bad = tmp_path / "bad.yaml"
    if content is not None:
        bad.write_text(content, encoding="utf-8")
    status = main(["merge-reports", str(tmp_path / "out.yaml"), str(good), str(bad)])
    error = capsys.readouterr().err
    assert status == 2
    assert str(bad) in error
    assert message in error
    assert not (tmp_path / "out.yaml").exists()


def test_cli_other_version_exits_2(
    tmp_path: Path, reports: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    older = copy.deepcopy(reports["app"])
    _details(older)["version"] = "0.0.1"
    path = _write(tmp_path / "older.yaml", older)
    status = main(["merge-reports", str(tmp_path / "out.yaml"), str(path)])
    error = capsys.readouterr().err
    assert status == 2
    assert f"{path}: report of pytest-aiml 0.0.1, but this is pytest-aiml {__version__}" in error


def test_cli_invalid_shard_exits_2(
    tmp_path: Path, reports: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    broken = copy.deepcopy(reports["app"])
    del _details(broken)["items"]
    path = _write(tmp_path / "broken.yaml", broken)
    status = main(["merge-reports", str(tmp_path / "out.yaml"), str(path)])
    assert status == 2
    assert f"{path}: x_pytest_aiml.items is missing" in capsys.readouterr().err


def test_cli_warns_on_stderr(tmp_path: Path, reports: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    first, second, _ = _shards(reports)
    second["aiml_analysis"]["monitoring"]["alerting"] = True
    inputs = [_write(tmp_path / "first.yaml", first), _write(tmp_path / "second.yaml", second)]
    merged = _merge_files(tmp_path / "out.yaml", inputs)
    streams = capsys.readouterr()
    assert f"merge-reports: warning: monitoring differs between {inputs[0]} and {inputs[1]}" in streams.err
    assert "merged 2 reports" in streams.out
    assert merged["aiml_analysis"]["monitoring"]["alerting"] is False


def test_cli_without_jsonschema_notes_it(
    tmp_path: Path, reports: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    path = _write(tmp_path / "app.yaml", reports["app"])
    merged = _merge_files(tmp_path / "out.yaml", [path])
    assert "jsonschema is not installed" in capsys.readouterr().err
    assert _details(merged)["items"] == _details(reports["app"])["items"]


def test_cli_missing_baseline_exits_2(
    tmp_path: Path, reports: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "app.yaml", reports["app"])
    status = main(["merge-reports", str(tmp_path / "out.yaml"), str(path), f"--baseline={tmp_path / 'none.json'}"])
    assert status == 2
    assert "none.json: baseline not found" in capsys.readouterr().err
