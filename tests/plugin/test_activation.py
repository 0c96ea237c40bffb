"""Activation: without --aiml the plugin is invisible; with it, options and config are checked."""

from __future__ import annotations

import textwrap

import pytest

UNSAFE_LOAD = "import pickle\n\ndef load(path):\n    with open(path, 'rb') as stream:\n        return pickle.load(stream)\n"


def test_plain_run_adds_no_items(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE_LOAD, test_plain="def test_ok():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "AIML" not in result.stdout.str()
    assert "-- aiml --" not in result.stdout.str()


def test_plain_run_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_modules="""
        import sys

        def test_no_heavy_module_loaded():
            heavy = ["libcst", "torch", "onnx", "onnxruntime", "yaml", "pytest_aiml.session", "pytest_aiml.engine"]
            assert [name for name in heavy if name in sys.modules] == []
        """
    )
    # The hypothesis plugin is disabled because hypothesis itself, not pytest-aiml, imports it.
    result = pytester.runpytest_subprocess("-p", "no:hypothesispytest", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_markers_registered_without_aiml(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.aiml
        @pytest.mark.aiml_waive("AIML101", reason="fixture loader")
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_aiml_adds_items_with_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE_LOAD, test_plain="def test_ok():\n    assert True\n")
    result = pytester.runpytest("--aiml", "--aiml-select", "AIML101", "-m", "aiml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["model_io.py:5:16 AIML101 pickle.load() unpickles its input*", "Fix: *"])
    excluded = pytester.runpytest("--aiml", "--aiml-select", "AIML101", "-m", "not aiml", "-p", "no:cacheprovider")
    excluded.assert_outcomes(passed=1, deselected=1)


def test_keyword_selects_by_code(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE_LOAD)
    result = pytester.runpytest("--aiml", "-k", "AIML101", "-p", "no:cacheprovider")
    assert result.parseoutcomes()["failed"] == 1
    assert "AIML101-unsafe-deserialization" in result.stdout.str()
    other = pytester.runpytest("--aiml", "-k", "AIML999", "-p", "no:cacheprovider")
    assert other.parseoutcomes().get("failed", 0) == 0
    assert other.parseoutcomes()["deselected"] >= 1


def test_failure_has_no_plugin_traceback(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE_LOAD)
    result = pytester.runpytest("--aiml", "-p", "no:cacheprovider")
    output = result.stdout.str()
    assert "Traceback" not in output
    assert "pytest_aiml" not in output
    assert "model_io.py::AIML101-unsafe-deserialization" in output


def test_unknown_config_key_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        textwrap.dedent(
            """
            [tool.pytest-aiml]
            selekt = ["AIML1"]
            """
        )
    )
    result = pytester.runpytest("--aiml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-aiml*selekt: unknown key 'selekt' (known keys are: artifacts, exclude, fail_on, ignore, models, preprocessing, select, waivers)*"])


def test_unknown_rule_code_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest-aiml]\nignore = ["AIML998"]\n')
    result = pytester.runpytest("--aiml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ignore: names unknown rule code 'AIML998'*"])


def test_unknown_code_on_command_line_is_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--aiml", "--aiml-select", "AIML9", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*select: names unknown rule code 'AIML9'*"])


def test_wrong_type_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest-aiml]\nexclude = 3\n')
    result = pytester.runpytest("--aiml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*exclude: must be a list of strings, not 3*"])


def test_ignore_and_exclude_apply(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE_LOAD)
    pytester.mkdir("scratch")
    pytester.path.joinpath("scratch", "old.py").write_text(UNSAFE_LOAD)
    both = pytester.runpytest("--aiml", "--aiml-select", "AIML101", "-p", "no:cacheprovider")
    both.assert_outcomes(failed=2)
    pytester.makepyprojecttoml('[tool.pytest-aiml]\nselect = ["AIML101"]\nexclude = ["scratch/**"]\n')
    excluded = pytester.runpytest("--aiml", "-p", "no:cacheprovider")
    excluded.assert_outcomes(failed=1)
    ignored = pytester.runpytest("--aiml", "--aiml-ignore", "AIML101", "-p", "no:cacheprovider")
    ignored.assert_outcomes()


def test_named_source_file_is_not_imported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(train="import pickle\nraise SystemExit('imported: training started')\nx = pickle.loads(b'')\n")
    result = pytester.runpytest("--aiml", "--aiml-select", "AIML101", "train.py", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "training started" not in result.stdout.str()
    by_node_id = pytester.runpytest("--aiml", "train.py::AIML101-unsafe-deserialization", "-p", "no:cacheprovider")
    by_node_id.assert_outcomes(failed=1)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_byte_order_mark_file_is_analysed(pytester: pytest.Pytester, workers: list[str]) -> None:
    # Python accepts a UTF-8 byte order mark, and editors on Windows write one.
    pytester.path.joinpath("model_io.py").write_bytes(UNSAFE_LOAD.encode("utf-8-sig"))
    result = pytester.runpytest("--aiml", "--aiml-select", "AIML101", "-p", "no:cacheprovider", *workers)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["model_io.py:5:16 AIML101 pickle.load() *"])


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_newer_syntax_is_still_analysed(pytester: pytest.Pytester, workers: list[str]) -> None:
    # A type statement is Python 3.12: an older interpreter's ast rejects it, libcst does not.
    pytester.makepyfile(model_io="type Paths = list[str]\n" + UNSAFE_LOAD)
    result = pytester.runpytest("--aiml", "--aiml-select", "AIML101", "-p", "no:cacheprovider", *workers)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["model_io.py:6:16 AIML101 pickle.load() *"])


def test_syntax_error_is_one_error_others_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(broken="import pickle\ndef load(:\n", model_io=UNSAFE_LOAD)
    result = pytester.runpytest("--aiml", "--aiml-select", "AIML101", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["broken.py:2:10 could not be parsed: *", "FAILED broken.py::aiml-parse-error*"])


def test_last_failed_reruns_aiml_items(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE_LOAD, test_plain="def test_ok():\n    assert True\n")
    first = pytester.runpytest("--aiml", "--aiml-select", "AIML101")
    first.assert_outcomes(failed=1, passed=1)
    rerun = pytester.runpytest("--aiml", "--aiml-select", "AIML101", "--lf")
    rerun.assert_outcomes(failed=1, deselected=1)


def test_report_path_needs_equals_sign(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--aiml", "--aiml-report", "out.yaml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*write --aiml-report=PATH with '='*"])


BROKEN_TEST_MODULE = "import not_installed_package\n\n\ndef test_uses_it():\n    pass\n"


def test_aiml_only_skips_repository_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE_LOAD, test_broken=BROKEN_TEST_MODULE)
    pytester.mkdir("sub").joinpath("conftest.py").write_text("import not_installed_package\n")
    result = pytester.runpytest("--aiml-only", "--aiml-select=AIML101", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "not_installed_package" not in result.stdout.str()


def test_aiml_only_with_paths_and_node_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE_LOAD, other_io=UNSAFE_LOAD)
    by_path = pytester.runpytest("--aiml-only", "--aiml-select=AIML101", "model_io.py", "-p", "no:cacheprovider", "-rA")
    by_path.assert_outcomes(failed=1)
    assert "other_io.py" not in by_path.stdout.str()
    by_node = pytester.runpytest("--aiml-only", "model_io.py::AIML101-unsafe-deserialization", "-p", "no:cacheprovider")
    by_node.assert_outcomes(failed=1)


def test_interrupted_run_marks_report_partial(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE_LOAD, test_broken=BROKEN_TEST_MODULE)
    result = pytester.runpytest("--aiml", "--aiml-report=report.yaml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*the run was interrupted before the aiml items ran*", "*pytest --aiml-only*"])
    import yaml

    details = yaml.safe_load((pytester.path / "report.yaml").read_text())["aiml_analysis"]["x_pytest_aiml"]
    assert details["interrupted"] is True
    assert details["complete_run"] is False


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_junit_properties_per_item(pytester: pytest.Pytester, workers: list[str]) -> None:
    import xml.etree.ElementTree as ElementTree

    pytester.makepyfile(model_io=UNSAFE_LOAD)
    pytester.runpytest("--aiml-only", "--aiml-select=AIML101", "--junitxml=junit.xml", "-p", "no:cacheprovider", *workers)
    [case] = ElementTree.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    properties = {prop.get("name"): prop.get("value") for prop in case.iter("property")}
    assert properties == {"aiml_code": "AIML101", "aiml_priority": "critical", "aiml_findings": "1"}
