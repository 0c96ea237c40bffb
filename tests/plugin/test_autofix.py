"""``--aiml-fix`` and ``--aiml-diff`` end to end: what is rewritten, what is left, and how the run ends."""

from __future__ import annotations

import textwrap

import pytest

XDIST = pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
RUN = ("--aiml-only", "--aiml-select=AIML101", "-p", "no:randomly")

TRAIN = textwrap.dedent(
    """\
    import torch
    import yaml

    state = torch.load("weights.pt")  # the last checkpoint
    config = yaml.load(open("config.yaml"), Loader=yaml.FullLoader)
    trusted = torch.load("ours.pt")  # aiml: waive[AIML101] written by our own training job
    """
)
TRAIN_FIXED = textwrap.dedent(
    """\
    import torch
    import yaml

    state = torch.load("weights.pt", weights_only=True)  # the last checkpoint
    config = yaml.safe_load(open("config.yaml"))
    trusted = torch.load("ours.pt")  # aiml: waive[AIML101] written by our own training job
    """
)
ARRAYS = "import numpy as np\n\nfeatures = np.load('features.npy', allow_pickle=True)\n"


def _write(pytester: pytest.Pytester, **files: str) -> None:
    # makepyfile dedents and strips the text; the tests compare files byte for byte.
    for name, text in files.items():
        (pytester.path / f"{name}.py").write_text(text)


@XDIST
def test_fix_rewrites_and_passes(pytester: pytest.Pytester, workers: list[str]) -> None:
    _write(pytester, train=TRAIN)
    result = pytester.runpytest(*RUN, "--aiml-fix", *workers)
    assert (pytester.path / "train.py").read_text() == TRAIN_FIXED
    # The items analyse the fixed file: the waived finding xfails, nothing fails.
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(
        ["*- aiml fixes -*", "fixed 2 findings in 1 file (AIML101: 2)", "  train.py: AIML101: 2"]
    )
    assert result.ret == pytest.ExitCode.OK


@XDIST
def test_fix_twice_changes_nothing(pytester: pytest.Pytester, workers: list[str]) -> None:
    _write(pytester, train=TRAIN_FIXED)
    result = pytester.runpytest(*RUN, "--aiml-fix", *workers)
    assert (pytester.path / "train.py").read_text() == TRAIN_FIXED
    result.stdout.fnmatch_lines(["no finding to fix: *"])
    assert result.ret == pytest.ExitCode.OK


@XDIST
def test_diff_shows_changes_without_writing(pytester: pytest.Pytester, workers: list[str]) -> None:
    _write(pytester, train=TRAIN, arrays=ARRAYS)
    result = pytester.runpytest(*RUN, "--aiml-diff", *workers)
    assert (pytester.path / "train.py").read_text() == TRAIN
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "would fix 2 findings in 1 file (AIML101: 2)",
            "no file was written (--aiml-diff); run with --aiml-fix to apply the diff below",
            "left for a person (no safe mechanical fix):",
            "  arrays.py:3:12 AIML101: numpy.load(allow_pickle=True) is not rewritten: *",
            "--- a/train.py",
            "+++ b/train.py",
            "@@ -1,6 +1,6 @@",
            '-state = torch.load("weights.pt")  # the last checkpoint',
            '-config = yaml.load(open("config.yaml"), Loader=yaml.FullLoader)',
            '+state = torch.load("weights.pt", weights_only=True)  # the last checkpoint',
            '+config = yaml.safe_load(open("config.yaml"))',
        ]
    )
    assert "--- a/arrays.py" not in result.stdout.str()


@XDIST
def test_unfixable_finding_still_fails(pytester: pytest.Pytester, workers: list[str]) -> None:
    _write(pytester, arrays=ARRAYS)
    result = pytester.runpytest(*RUN, "--aiml-fix", *workers)
    assert (pytester.path / "arrays.py").read_text() == ARRAYS
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*arrays.py:3:12 AIML101 numpy.load(allow_pickle=True)*"])


@XDIST
def test_config_waiver_and_baseline_not_fixed(pytester: pytest.Pytester, workers: list[str]) -> None:
    # The baseline is recorded while the repository contains only legacy.py.
    _write(pytester, legacy="import torch\nstate = torch.load('b.pt')\n")
    baseline = pytester.runpytest(*RUN, "--aiml-baseline=baseline.json", "--aiml-baseline-update")
    assert baseline.ret == pytest.ExitCode.TESTS_FAILED
    _write(pytester, scripts="import torch\nstate = torch.load('a.pt')\n", train="import torch\nstate = torch.load('c.pt')\n")
    pytester.makepyprojecttoml(
        '[[tool.pytest-aiml.waivers]]\nrules = ["AIML101"]\npaths = ["scripts.py"]\nreason = "one-off conversion script"\n'
    )
    result = pytester.runpytest(*RUN, "--aiml-baseline=baseline.json", "--aiml-fix", *workers)
    assert (pytester.path / "scripts.py").read_text() == "import torch\nstate = torch.load('a.pt')\n"
    assert (pytester.path / "legacy.py").read_text() == "import torch\nstate = torch.load('b.pt')\n"
    assert (pytester.path / "train.py").read_text() == "import torch\nstate = torch.load('c.pt', weights_only=True)\n"
    # The fixed train.py has no AIML101 item left: torch.load(..., weights_only=True) is never reported.
    result.assert_outcomes(xfailed=2)
    result.stdout.fnmatch_lines(["fixed 1 finding in 1 file (AIML101: 1)"])


def test_named_path_limits_fix(pytester: pytest.Pytester) -> None:
    _write(pytester, train=TRAIN, other="import torch\nstate = torch.load('c.pt')\n")
    pytester.runpytest(*RUN, "--aiml-fix", "train.py")
    assert (pytester.path / "train.py").read_text() == TRAIN_FIXED
    assert (pytester.path / "other.py").read_text() == "import torch\nstate = torch.load('c.pt')\n"


def test_fix_under_aiml_with_named_path(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("src")
    (pytester.path / "src" / "train.py").write_text(TRAIN)
    _write(pytester, other="import torch\nstate = torch.load('c.pt')\n")
    result = pytester.runpytest("--aiml", "--aiml-select=AIML101", "--aiml-fix", "src")
    assert (pytester.path / "src" / "train.py").read_text() == TRAIN_FIXED
    assert (pytester.path / "other.py").read_text() == "import torch\nstate = torch.load('c.pt')\n"
    result.stdout.fnmatch_lines(["fixed 2 findings in 1 file (AIML101: 2)"])


@pytest.mark.parametrize("selection", [["-k", "AIML101"], ["-m", "not slow"], ["--lf"]], ids=["k", "m", "lf"])
def test_fix_rejects_item_filters(pytester: pytest.Pytester, selection: list[str]) -> None:
    _write(pytester, train=TRAIN)
    result = pytester.runpytest(*RUN, "--aiml-fix", *selection)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--aiml-fix rewrites files before any item is selected, so {selection[0]} cannot narrow it*"])
    assert (pytester.path / "train.py").read_text() == TRAIN


def test_invalid_inline_waiver_file_not_fixed(pytester: pytest.Pytester) -> None:
    source = "import torch\nstate = torch.load('a.pt')  # aiml: waive[AIML101]\n"
    _write(pytester, train=source)
    result = pytester.runpytest(*RUN, "--aiml-fix")
    assert (pytester.path / "train.py").read_text() == source
    result.stdout.fnmatch_lines(["not fixed: train.py has an invalid inline waiver: *no reason*"])


def test_fix_implies_aiml(pytester: pytest.Pytester) -> None:
    _write(pytester, train=TRAIN)
    result = pytester.runpytest("--aiml-select=AIML101", "--aiml-fix", "-p", "no:randomly")
    assert (pytester.path / "train.py").read_text() == TRAIN_FIXED
    result.stdout.fnmatch_lines(["fixed 2 findings in 1 file (AIML101: 2)"])
