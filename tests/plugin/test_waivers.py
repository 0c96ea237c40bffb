"""Waivers from config, inline comments and markers; baselines; selection and the fail-on threshold."""

from __future__ import annotations

import dataclasses
import json
import textwrap

import pytest
import yaml

from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.waivers import inline_match, inline_waivers
from tests.report_validation import assert_valid_report

XDIST = pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
RUN = ("--aiml", "--aiml-select=AIML101", "-p", "no:cacheprovider", "-rA")

LOADERS = """
import pickle


def first(stream):
    return pickle.load(stream)


def second(stream):
    return pickle.loads(stream.read())
"""


def _report(pytester: pytest.Pytester) -> dict:
    report = yaml.safe_load((pytester.path / "report.yaml").read_text())
    assert_valid_report(report)
    return report["aiml_analysis"]["x_pytest_aiml"]


@XDIST
def test_config_waiver_xfails_with_reason(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(loaders=LOADERS)
    pytester.makepyprojecttoml(
        textwrap.dedent(
            """
            [[tool.pytest-aiml.waivers]]
            rules = ["AIML1"]
            paths = ["loaders.py"]
            reason = "streams come from our own feature store"
            expires = 2099-01-31
            """
        )
    )
    result = pytester.runpytest(*RUN, "--aiml-report=report.yaml", *workers)
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*XFAIL*loaders.py::AIML101-unsafe-deserialization*streams come from our own feature store*"])
    details = _report(pytester)
    assert details["waived_findings_by_rule"] == {"AIML101": 2}
    [waiver] = details["waivers"]
    assert waiver["origin"] == "pyproject.toml waivers[1]"
    assert waiver["source"] == "config"
    assert waiver["expires"] == "2099-01-31"
    assert waiver["findings"] == ["loaders.py:5 AIML101", "loaders.py:9 AIML101"]
    assert details["stale_waivers"] == []


def test_xfailed_item_report_has_no_traceback(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(loaders=LOADERS)
    pytester.makepyprojecttoml('[[tool.pytest-aiml.waivers]]\nrules = ["AIML101"]\nreason = "own feature store"\n')
    recorded = pytester.inline_run(*RUN)
    [report] = [report for report in recorded.getreports("pytest_runtest_logreport") if report.when == "call"]
    assert report.wasxfail == "waived by pyproject.toml waivers[1]: own feature store"
    # The plain reason, not a formatted traceback through pytest and the plugin.
    assert str(report.longrepr) == "waived by pyproject.toml waivers[1]: own feature store"


def test_path_globs_are_not_substrings(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(loaders=LOADERS)
    pytester.makepyprojecttoml('[[tool.pytest-aiml.waivers]]\nrules = ["AIML101"]\npaths = ["load"]\nreason = "x"\n')
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(failed=1)


@XDIST
def test_partly_waived_item_fails_on_the_rest(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(loaders=LOADERS.replace("return pickle.load(stream)", "return pickle.load(stream)  # aiml: waive[AIML101] trusted cache"))
    result = pytester.runpytest(*RUN, *workers)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "loaders.py:9:12 AIML101" in output
    assert "loaders.py:5:" not in output
    assert "1 waived and 0 baselined finding(s) are not shown." in output


@pytest.mark.parametrize(
    "source",
    [
        # on the flagged line
        "import pickle\nx = pickle.loads(b'')  # aiml: waive[AIML101] fixture bytes\n",
        # on the line above
        "import pickle\n# aiml: waive[AIML101] fixture bytes\nx = pickle.loads(b'')\n",
        # on the first line of a multi-line call
        "import pickle\nx = dict(  # aiml: waive[AIML101] fixture bytes\n    value=pickle.loads(b''),\n)\n",
        # above a decorator of the decorated function
        "import pickle\n# aiml: waive[AIML101] fixture bytes\n@register(\n    pickle.loads(b''),\n)\ndef f():\n    pass\n",
        # on the first line of a comprehension spanning lines
        "import pickle\nrows = [  # aiml: waive[AIML101] fixture bytes\n    pickle.loads(blob)\n    for blob in blobs\n]\n",
        # for the whole file, near the top
        '"""Fixtures."""\n# aiml: waive-file[AIML1] test fixtures only\nimport pickle\nx = pickle.loads(b"")\ny = pickle.loads(b"")\n',
    ],
    ids=["same-line", "line-above", "multi-line-call", "decorator", "comprehension", "whole-file"],
)
def test_inline_waiver_placement(pytester: pytest.Pytester, source: str) -> None:
    pytester.makepyfile(blobs=source)
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(xfailed=1)


def test_inline_waiver_elsewhere_does_not_apply(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(blobs="import pickle\n# aiml: waive[AIML101] fixture bytes\n\nx = 1\ny = pickle.loads(b'')\n")
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*stale waivers, matching no finding*", "*blobs.py:2*"])


@XDIST
def test_marker_waiver_from_conftest(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(loaders=LOADERS)
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.nodeid == "loaders.py::AIML101-unsafe-deserialization":
                    item.add_marker(pytest.mark.aiml_waive("AIML101", reason="reviewed in PR 12", expires="2099-06-30"))
        """
    )
    result = pytester.runpytest(*RUN, "--aiml-report=report.yaml", *workers)
    # conftest.py calls no loader, so AIML101's pre-filter gives it no item.
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*reviewed in PR 12*"])
    [waiver] = _report(pytester)["waivers"]
    assert waiver["source"] == "marker"


@XDIST
def test_expired_waiver_fails_with_date(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(loaders=LOADERS)
    pytester.makepyprojecttoml(
        '[[tool.pytest-aiml.waivers]]\nrules = ["AIML101"]\nreason = "until the migration"\nexpires = 2020-01-31\n'
    )
    result = pytester.runpytest(*RUN, "--aiml-report=report.yaml", *workers)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*The waiver pyproject.toml waivers[[]1[]] would cover loaders.py:5:12 but expired on 2020-01-31.*"])
    assert _report(pytester)["expired_waivers"] == ["pyproject.toml waivers[1]"]


@XDIST
def test_stale_waiver_reported_and_strict_fails(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(clean="import yaml\n\nvalue = yaml.load('{}', Loader=yaml.SafeLoader)\n")
    pytester.makepyprojecttoml('[[tool.pytest-aiml.waivers]]\nrules = ["AIML101"]\nreason = "old code"\n')
    result = pytester.runpytest(*RUN, "--aiml-report=report.yaml", *workers)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*stale waivers, matching no finding:*", "*pyproject.toml waivers[[]1[]]*"])
    assert _report(pytester)["stale_waivers"] == ["pyproject.toml waivers[1]"]
    strict = pytester.runpytest(*RUN, "-o", "aiml_strict_waivers=true", *workers)
    assert strict.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('rules = ["AIML999"]\nreason = "x"', "*waivers[[]1[]].rules: unknown rule code 'AIML999'*"),
        ('rules = ["AIML101"]', "*waivers[[]1[]].reason: is missing*"),
        ('rules = ["AIML101"]\nreason = "x"\nexpires = "next year"', "*waivers[[]1[]].expires: invalid expiry date 'next year'*"),
        ('rules = ["AIML101"]\nreason = "x"\nowner = "ml-team"', "*waivers[[]1[]].owner: unknown key*"),
    ],
    ids=["unknown-code", "missing-reason", "bad-date", "unknown-key"],
)
def test_invalid_config_waiver_is_usage_error(pytester: pytest.Pytester, table: str, message: str) -> None:
    pytester.makepyprojecttoml(f"[[tool.pytest-aiml.waivers]]\n{table}\n")
    result = pytester.runpytest("--aiml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_invalid_inline_waiver_names_file_and_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(blobs="import pickle\nx = pickle.loads(b'')  # aiml: waive[AIML101]\n")
    result = pytester.runpytest(*RUN)
    result.stdout.fnmatch_lines(["*invalid inline waiver: blobs.py:2: inline waiver for AIML101 has no reason*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


@XDIST
def test_baseline_cycle(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(loaders=LOADERS)
    record = pytester.runpytest(*RUN, "--aiml-baseline=baseline.json", "--aiml-baseline-update", *workers)
    assert record.ret == pytest.ExitCode.TESTS_FAILED
    entries = json.loads((pytester.path / "baseline.json").read_text())["findings"]
    assert [entry["code"] for entry in entries] == ["AIML101", "AIML101"]
    assert all("line" not in entry for entry in entries)

    # Known findings pass as xfailed, even after an edit shifts their lines.
    pytester.makepyfile(loaders="# a new header comment\n\n" + LOADERS)
    known = pytester.runpytest(*RUN, "--aiml-baseline=baseline.json", *workers)
    known.assert_outcomes(xfailed=1)
    known.stdout.fnmatch_lines(["*2 finding(s) in baseline*"])

    # A new finding fails on its own; the baselined ones stay hidden.
    pytester.makepyfile(loaders=LOADERS + "\n\ndef third(path):\n    return pickle.load(open(path, 'rb'))\n")
    new = pytester.runpytest(*RUN, "--aiml-baseline=baseline.json", *workers)
    new.assert_outcomes(failed=1)
    assert "loaders.py:13:12 AIML101" in new.stdout.str()
    assert "loaders.py:5:" not in new.stdout.str()

    # A fixed finding is reported so the baseline can shrink.
    pytester.makepyfile(loaders=LOADERS.replace("return pickle.load(stream)", "return None"))
    fixed = pytester.runpytest(*RUN, "--aiml-baseline=baseline.json", "--aiml-report=report.yaml", *workers)
    fixed.assert_outcomes(xfailed=1)
    fixed.stdout.fnmatch_lines(["*1 baseline finding(s) were not found (fixed, or now waived); shrink the baseline with --aiml-baseline-update*"])
    assert len(_report(pytester)["baseline_disappeared"]) == 1


def test_broken_baseline_is_usage_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "baseline.json").write_text("{not json")
    result = pytester.runpytest("--aiml", "--aiml-baseline=baseline.json", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*baseline*baseline.json cannot be read*--aiml-baseline-update*"])


@XDIST
def test_fail_on_threshold(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(
        train="import torch\nmodel = torch.nn.Linear(2, 2)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for step in range(3):\n    loss = model(torch.ones(2)).sum()\n    loss.backward()\n    opt.step()\n"
        "state = torch.load('weights.pt', weights_only=True)\n",
    )
    every = pytester.runpytest("--aiml", "--aiml-select=AIML401", "-p", "no:cacheprovider", *workers)
    every.assert_outcomes(failed=1)
    critical_only = pytester.runpytest(
        "--aiml", "--aiml-select=AIML401", "--aiml-fail-on", "critical", "--aiml-report=report.yaml", "-p", "no:cacheprovider", *workers
    )
    critical_only.assert_outcomes(passed=1)
    critical_only.stdout.fnmatch_lines(["*1 finding(s) are below --aiml-fail-on critical and do not fail*"])
    report = yaml.safe_load((pytester.path / "report.yaml").read_text())
    assert [item["priority"] for item in report["aiml_analysis"]["recommendations"]] == ["high"]


def test_select_and_ignore_by_family(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(loaders=LOADERS)
    pytester.makepyprojecttoml('[tool.pytest-aiml]\nselect = ["AIML1"]\nignore = ["AIML102"]\n')
    result = pytester.runpytest("--aiml", "--co", "-q", "-p", "no:cacheprovider")
    output = result.stdout.str()
    assert "loaders.py::AIML101-unsafe-deserialization" in output
    assert "AIML102" not in output
    assert "AIML2" not in output
    assert "AIML4" not in output


CUSTOM_RULE_CONFTEST = '''
import libcst as cst

from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority


class NoPrintInServing(FileRule):
    code = "AIML950"
    slug = "print-in-serving"
    category = Category.MONITORING
    priority = Priority.LOW
    effort = Effort.LOW
    message = "print() in serving code; use the logging module"
    impact = "Prints bypass log levels, structure and shipping, so nobody sees them in production."
    fix = "Replace print() with a logger call."
    prefilter = ("print(",)
    VALID = (Example("import logging\\nlogging.getLogger(__name__).info('ready')\\n"),)
    INVALID = (Example("print('ready')\\n", lines=(1,)),)

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.qualified_name(node.func) == "builtins.print":
            self.report(node)


def pytest_aiml_register_rules(registry):
    registry.add(NoPrintInServing)
'''


@XDIST
def test_custom_rule_from_conftest(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makeconftest(CUSTOM_RULE_CONFTEST)
    pytester.makepyfile(serve="def handler(request):\n    print('got', request)\n    return 1\n")
    result = pytester.runpytest("--aiml", "--aiml-select=AIML950", "--aiml-report=report.yaml", "-p", "no:cacheprovider", *workers)
    # conftest.py mentions print( in the rule's examples, so it gets an item too, which passes.
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["serve.py:2:5 AIML950 print() in serving code; use the logging module", "Fix: Replace print() with a logger call."])
    report = yaml.safe_load((pytester.path / "report.yaml").read_text())
    assert_valid_report(report)
    assert report["aiml_analysis"]["recommendations"][0]["category"] == "monitoring"


def test_xdist_collection_error_partial_outputs(pytester: pytest.Pytester) -> None:
    # pytest-xdist goes on after a collection error, so the file's findings are missing: both outputs are partial.
    pytester.makepyfile(
        blobs="import pickle\nx = pickle.loads(b'')  # aiml: waive[AIML101]\n",
        loaders="import pickle\n\n\ndef load(stream):\n    return pickle.load(stream)\n",
    )
    result = pytester.runpytest(*RUN, "-n", "2", "--aiml-report=report.yaml", "--aiml-sarif=aiml.sarif")
    assert result.ret != pytest.ExitCode.OK
    details = _report(pytester)
    assert details["complete_run"] is False
    assert details["interrupted"] is True
    sarif = json.loads((pytester.path / "aiml.sarif").read_text(encoding="utf-8"))
    assert sarif["runs"][0]["invocations"][0]["executionSuccessful"] is False


TRAIN = (
    "import joblib\nfrom sklearn.linear_model import LogisticRegression\n\n"
    "model = LogisticRegression(max_iter=200).fit(X_train, y_train)\njoblib.dump(model, 'model.joblib')\n"
)


@XDIST
def test_waive_file_repository_finding(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(train=TRAIN, features="import pandas as pd\n\n\ndef build(df):\n    return df.fillna(0)\n")
    pytester.mkdir("tests").joinpath("test_features.py").write_text("from features import build\n")
    args = ("--aiml-only", "--aiml-select=AIML409", "-p", "no:cacheprovider", "-rA", "--aiml-report=report.yaml", *workers)
    pytester.runpytest(*args).assert_outcomes(failed=1)
    pytester.makepyfile(train="# aiml: waive-file[AIML409] trained once in a notebook session, never re-run\n" + TRAIN)
    result = pytester.runpytest(*args)
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*XFAIL .::AIML409-untested-ml-module - waived by train.py:1: trained once*"])
    details = _report(pytester)
    assert details["stale_waivers"] == []
    [waiver] = details["waivers"]
    assert (waiver["origin"], waiver["findings"]) == ("train.py:1", ["train.py AIML409"])


def test_waive_file_own_file_only(pytester: pytest.Pytester) -> None:
    waived = "# aiml: waive-file[AIML409] trained once in a notebook session, never re-run\n" + TRAIN
    pytester.makepyfile(train=waived, retrain=TRAIN, features="import pandas as pd\n\n\ndef build(df):\n    return df.fillna(0)\n")
    pytester.mkdir("tests").joinpath("test_features.py").write_text("from features import build\n")
    result = pytester.runpytest("--aiml-only", "--aiml-select=AIML409", "-p", "no:cacheprovider", "--aiml-report=report.yaml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["retrain.py AIML409 *", "1 waived and 0 baselined finding(s) are not shown."])
    [waiver] = _report(pytester)["waivers"]
    assert waiver["findings"] == ["train.py AIML409"]


def test_waive_file_own_file_only_without_tests(pytester: pytest.Pytester) -> None:
    # Without any test file the rule still reports each module on its own, so the comment
    # covers its own module whichever module comes first.
    waived = "# aiml: waive-file[AIML409] trained once in a notebook session, never re-run\n" + TRAIN
    pytester.makepyfile(retrain=waived, train=TRAIN)
    result = pytester.runpytest("--aiml-only", "--aiml-select=AIML409", "-p", "no:cacheprovider", "--aiml-report=report.yaml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["train.py AIML409 the repository has no tests, so no test imports train.py"])
    [waiver] = _report(pytester)["waivers"]
    assert waiver["findings"] == ["retrain.py AIML409"]


def test_line_waiver_repository_finding(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(train="# aiml: waive[AIML409] only a line\n" + TRAIN)
    result = pytester.runpytest("--aiml-only", "--aiml-select=AIML409", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "The waiver train.py:1 names AIML409, but the finding is on the whole of train.py, so only a file waiver "
        "covers it: # aiml: waive-file[AIML409] reason, within its first 50 lines.",
    ])


SERVE_CONSTANTS = "import torch\nFEATURE_MEANS = [0.5, 12.5]\nmodel = torch.load('m.pt', weights_only=True)\n"
WAIVE_804 = "# aiml: waive[AIML804] rounded on purpose for the v2 API"


@XDIST
@pytest.mark.parametrize(
    ("serve", "line"),
    [
        (SERVE_CONSTANTS.replace("12.5]", "12.5]  " + WAIVE_804), 2),
        (SERVE_CONSTANTS.replace("FEATURE_MEANS", WAIVE_804 + "\nFEATURE_MEANS"), 3),
    ],
    ids=["on-the-line", "alone-above"],
)
def test_line_waiver_covers_repository_line(pytester: pytest.Pytester, workers: list[str], serve: str, line: int) -> None:
    # AIML804 reports the serving constant's line, so a comment on it, or alone just above it, covers it.
    pytester.makepyfile(train="FEATURE_MEANS = [0.5, 12.0]\nmodel.fit(x)\n", serve=serve)
    args = ("--aiml-only", "--aiml-select=AIML804", "-p", "no:cacheprovider", "--aiml-report=report.yaml", *workers)
    pytester.runpytest(*args).assert_outcomes(xfailed=1)
    details = _report(pytester)
    [waiver] = details["waivers"]
    assert waiver["findings"] == [f"serve.py:{line} AIML804"]
    assert details["stale_waivers"] == []


def test_inline_waiver_covers_its_own_file_only() -> None:
    [waiver] = inline_waivers("serve.py", "MEAN = 1  " + WAIVE_804 + "\n", lambda code: True)
    finding = Finding(code="AIML804", path="serve.py", line=1, column=1, message="m")
    assert inline_match(finding, waiver)
    assert not inline_match(dataclasses.replace(finding, path="train.py"), waiver)
    assert not inline_match(dataclasses.replace(finding, line=2), waiver), "a code line above covers nothing below"
