"""The content-hash analysis cache: replays, invalidation, and running without it."""

from __future__ import annotations

import pytest

UNSAFE = "import pickle\n\n\ndef load(stream):\n    return pickle.load(stream)\n"
#: AIML101 checks this loader call and finds it safe, so the file's item passes.
CHECKED_SAFE = "import yaml\n\n\ndef load(stream):\n    return yaml.load(stream, Loader=yaml.SafeLoader)\n"
ARGS = ("--aiml-only", "--aiml-select=AIML101", "-rA")


def _entries(pytester: pytest.Pytester) -> list:
    return sorted(pytester.path.joinpath(".pytest_cache", "d", "aiml-analysis").rglob("*.json"))


def test_cache_hit_replays_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE, other=CHECKED_SAFE)
    cold = pytester.runpytest(*ARGS, "--log-level=DEBUG")
    cold.assert_outcomes(failed=1, passed=1)
    assert len(_entries(pytester)) == 2
    warm = pytester.runpytest(*ARGS)
    warm.assert_outcomes(failed=1, passed=1)
    failure = [line for line in cold.stdout.lines if "AIML101 pickle.load()" in line]
    assert failure
    assert failure == [line for line in warm.stdout.lines if "AIML101 pickle.load()" in line]


def test_edited_file_is_analysed_again(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE)
    pytester.runpytest(*ARGS).assert_outcomes(failed=1)
    pytester.makepyfile(model_io=CHECKED_SAFE)
    pytester.runpytest(*ARGS).assert_outcomes(passed=1)
    assert len(_entries(pytester)) == 2


def test_changed_rule_set_analyses_again(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE + "\nMODEL = '/opt/models/m.pkl'\n\n\ndef open_model():\n    return pickle.load(open(MODEL, 'rb'))\n")
    pytester.runpytest(*ARGS).assert_outcomes(failed=1)
    wider = pytester.runpytest("--aiml-only", "--aiml-select=AIML101,AIML201")
    wider.assert_outcomes(failed=2)
    assert len(_entries(pytester)) == 2


def test_changed_waiver_needs_no_new_analysis(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE)
    pytester.runpytest(*ARGS).assert_outcomes(failed=1)
    pytester.makepyprojecttoml('[[tool.pytest-aiml.waivers]]\nrules = ["AIML101"]\nreason = "trusted streams"\n')
    waived = pytester.runpytest(*ARGS)
    waived.assert_outcomes(xfailed=1)
    assert len(_entries(pytester)) == 1


def test_without_cacheprovider(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE)
    result = pytester.runpytest(*ARGS, "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert not pytester.path.joinpath(".pytest_cache").exists()


def test_no_cache_option_forces_analysis(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE)
    pytester.runpytest(*ARGS, "--aiml-no-cache").assert_outcomes(failed=1)
    assert _entries(pytester) == []


def test_damaged_entry_is_a_miss(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model_io=UNSAFE)
    pytester.runpytest(*ARGS).assert_outcomes(failed=1)
    [entry] = _entries(pytester)
    entry.write_text("{broken")
    pytester.runpytest(*ARGS).assert_outcomes(failed=1)


def test_parallel_prescan_matches_serial(pytester: pytest.Pytester) -> None:
    files = {f"module_{index:02d}": UNSAFE if index % 3 == 0 else CHECKED_SAFE for index in range(40)}
    pytester.makepyfile(**files)
    parallel = pytester.runpytest(*ARGS, "-p", "no:cacheprovider")
    serial = pytester.runpytest(*ARGS, "-p", "no:cacheprovider", "-n", "2")
    assert parallel.parseoutcomes() == serial.parseoutcomes()
    assert parallel.parseoutcomes()["failed"] == 14


def test_jobs_option_gives_the_same_outcomes(pytester: pytest.Pytester) -> None:
    files = {f"module_{index:02d}": UNSAFE if index % 4 == 0 else CHECKED_SAFE for index in range(30)}
    pytester.makepyfile(**files)
    serial = pytester.runpytest(*ARGS, "-p", "no:cacheprovider", "--aiml-jobs=1", "--aiml-report=serial.yaml")
    pooled = pytester.runpytest(*ARGS, "-p", "no:cacheprovider", "--aiml-jobs=2", "--aiml-report=pooled.yaml")
    assert serial.parseoutcomes() == pooled.parseoutcomes() == {"failed": 8, "passed": 22}
    assert _report_items(pytester, "serial.yaml") == _report_items(pytester, "pooled.yaml")


def test_jobs_option_rejects_zero(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--aiml-only", "--aiml-jobs=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid --aiml-jobs value '0': give a whole number of processes, 1 or more*"])


def test_signals_cache_follows_edits(pytester: pytest.Pytester) -> None:
    train = "import torch\n\ndef fit(model, loader, optimizer):\n    for x, y in loader:\n        optimizer.zero_grad()\n        model(x).sum().backward()\n        optimizer.step()\n"
    pytester.makepyfile(train=train)
    args = ("--aiml-only", "--aiml-select=AIML401")
    pytester.runpytest(*args).assert_outcomes(failed=1)
    assert pytester.path.joinpath(".pytest_cache", "d", "aiml-signals", "signals.json").is_file()
    pytester.runpytest(*args).assert_outcomes(failed=1)
    pytester.makepyfile(train="import mlflow\n" + train)
    pytester.runpytest(*args).assert_outcomes(passed=1)


@pytest.mark.parametrize("repeat", range(3))
# With 12 modules, each worker analyses the files of its own items. With 40, one worker
# scans every file over the process pool, and the other reads its results.
@pytest.mark.parametrize("modules", [12, 40])
def test_xdist_outcomes_and_report_are_stable(pytester: pytest.Pytester, repeat: int, modules: int) -> None:
    files = {f"module_{index:02d}": UNSAFE if index % 3 == 0 else CHECKED_SAFE for index in range(modules)}
    files["train"] = "import torch\n\ndef fit(loss, optimizer):\n    loss.backward()\n    optimizer.step()\n"
    pytester.makepyfile(**files)
    plain = pytester.runpytest("--aiml-only", "-p", "no:cacheprovider", "--aiml-report=plain.yaml")
    xdist = pytester.runpytest("--aiml-only", "-p", "no:cacheprovider", "-n", "2", "--aiml-report=xdist.yaml")
    assert plain.parseoutcomes() == xdist.parseoutcomes()
    plain_report = (pytester.path / "plain.yaml").read_text(encoding="utf-8")
    assert plain_report == (pytester.path / "xdist.yaml").read_text(encoding="utf-8")


def _report_items(pytester: pytest.Pytester, name: str) -> list:
    import yaml

    report = yaml.safe_load((pytester.path / name).read_text(encoding="utf-8"))
    return report["aiml_analysis"]["x_pytest_aiml"]["items"]


def test_long_cold_scan_shows_progress(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**{f"module_{index:03d}": UNSAFE for index in range(100)})
    verbose = pytester.runpytest("--aiml-only", "--aiml-select=AIML101", "-p", "no:cacheprovider", "--aiml-jobs=2")
    verbose.stdout.fnmatch_lines(["aiml: analysing 100 files in 2 processes", "aiml: analysed 100 files in *s", "collected 100 items"])
    quiet = pytester.runpytest("--aiml-only", "--aiml-select=AIML101", "-p", "no:cacheprovider", "-q")
    assert not [line for line in quiet.outlines if line.startswith("aiml: analys")]


def test_xdist_shared_scan_fills_the_cache(pytester: pytest.Pytester) -> None:
    files = {f"module_{index:02d}": UNSAFE if index % 4 == 0 else CHECKED_SAFE for index in range(40)}
    pytester.makepyfile(**files)
    cold = pytester.runpytest(*ARGS, "-n", "2")
    assert cold.parseoutcomes() == {"failed": 10, "passed": 30}
    assert len(_entries(pytester)) == 40
    warm = pytester.runpytest(*ARGS, "-n", "2")
    assert warm.parseoutcomes() == cold.parseoutcomes()
    assert len(_entries(pytester)) == 40


HELPER_RULE_CONFTEST = '''
import libcst as cst

from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority
from servingrules import wording


class NoPrintInServing(FileRule):
    code = "AIML950"
    slug = "print-in-serving"
    category = Category.MONITORING
    priority = Priority.LOW
    effort = Effort.LOW
    message = "print() in serving code"
    impact = "Prints bypass log levels, structure and shipping, so nobody sees them in production."
    fix = "Replace print() with a logger call."
    prefilter = ("print(",)
    VALID = (Example("import logging\\\\nlogging.getLogger(__name__).info('ready')\\\\n"),)
    INVALID = (Example("print('ready')\\\\n", lines=(1,)),)

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.qualified_name(node.func) == "builtins.print":
            self.report(node, wording.message())


def pytest_aiml_register_rules(registry):
    registry.add(NoPrintInServing)
'''


def test_edited_rule_helper_analyses_again(pytester: pytest.Pytester) -> None:
    # A custom rule's wording lives in a helper module that its conftest.py imports.
    pytester.makeconftest(HELPER_RULE_CONFTEST)
    package = pytester.mkpydir("servingrules")
    (package / "wording.py").write_text("def message():\n    return 'print() in serving code; use logging'\n")
    pytester.makepyfile(serve="def handler(request):\n    print('got', request)\n    return 1\n")
    args = ("--aiml-only", "--aiml-select=AIML950", "-p", "no:randomly")
    pytester.runpytest(*args).stdout.fnmatch_lines(["*AIML950 print() in serving code; use logging"])
    (package / "wording.py").write_text("def message():\n    return 'print() in serving code; use a logger'\n")
    pytester.runpytest(*args).stdout.fnmatch_lines(["*AIML950 print() in serving code; use a logger"])


#: Passes AIML101's text pre-filter ("load(") but not its candidate check: no loader is called.
RULED_OUT = "import json\n\nvalue = json.loads('1')\n"


# With 12 modules the items come from each file's screening at collection; with 40, from the pool's scan.
@pytest.mark.parametrize("modules", [12, 40])
def test_ruled_out_file_has_no_item(pytester: pytest.Pytester, modules: int) -> None:
    kinds = (UNSAFE, CHECKED_SAFE, RULED_OUT)
    pytester.makepyfile(**{f"module_{index:02d}": kinds[index % 3] for index in range(modules)})
    runs = {
        name: pytester.runpytest(*ARGS, "-p", "no:cacheprovider", *extra)
        for name, extra in (("pool", ()), ("one process", ("--aiml-jobs=1",)), ("xdist", ("-n", "2")))
    }
    unsafe, safe = len(range(0, modules, 3)), len(range(1, modules, 3))
    for name, result in runs.items():
        assert result.parseoutcomes() == {"failed": unsafe, "passed": safe}, name
        assert not [line for line in result.outlines if "module_02.py" in line], name


def test_warm_run_skips_heavy_imports(pytester: pytest.Pytester) -> None:
    # Every finding comes from the cache, so nothing is parsed, and libcst (about 0.2 s to
    # import) stays unimported, as does yaml, read only beside model artifacts. Only a
    # fresh process can show that.
    pytester.makepyfile(model_io=UNSAFE, other=CHECKED_SAFE)
    # The subprocess has its folder on sys.path, so the probe loads as a plugin. The run names
    # its files, so the probe itself is not scanned.
    pytester.makepyfile(
        libcst_probe="import sys\n\n\ndef pytest_unconfigure(config):\n"
        "    print('libcst imported:', 'libcst' in sys.modules)\n    print('yaml imported:', 'yaml' in sys.modules)\n"
    )
    arguments = (*ARGS, "-p", "libcst_probe", "-p", "no:randomly", "model_io.py", "other.py")
    cold = pytester.runpytest_subprocess(*arguments)
    cold.assert_outcomes(failed=1, passed=1)
    cold.stdout.fnmatch_lines(["libcst imported: True"])
    warm = pytester.runpytest_subprocess(*arguments)
    warm.assert_outcomes(failed=1, passed=1)
    warm.stdout.fnmatch_lines(["libcst imported: False", "yaml imported: False"])
