"""The repository rules' cache: reused while nothing they read changed, checked again when something did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pytest_aiml.session
from pytest_aiml.engine.repository import RepositoryResults, run_repository_rules

ARGS = ("--aiml-only", "-p", "no:randomly")
VULNERABLE = "AIML104-vulnerable-dependency"


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the runs that checked the repository rules instead of taking their results from the cache."""
    calls: list[int] = []

    def counted(*args: object, **kwargs: object) -> RepositoryResults:
        calls.append(1)
        return run_repository_rules(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pytest_aiml.session, "run_repository_rules", counted)
    return calls


def _entry(pytester: pytest.Pytester) -> Path:
    return pytester.path / ".pytest_cache" / "d" / "aiml-repository" / "repository.json"


def _outcome(result: pytest.RunResult, name: str) -> str:
    [line] = [line for line in result.stdout.lines if f"::{name}" in line and line.startswith(("PASSED", "FAILED"))]
    return line.split()[0]


def test_warm_run_reuses_the_results(pytester: pytest.Pytester, checks: list[int]) -> None:
    pytester.makefile(".txt", requirements="torch==2.1.0\n")
    cold = pytester.runpytest(*ARGS, "-rA")
    warm = pytester.runpytest(*ARGS, "-rA")
    assert len(checks) == 1
    assert _outcome(cold, VULNERABLE) == _outcome(warm, VULNERABLE) == "FAILED"
    assert cold.parseoutcomes() == warm.parseoutcomes()
    failure = [line for line in cold.stdout.lines if "AIML104" in line and "requirements.txt:1" in line]
    assert failure
    assert failure == [line for line in warm.stdout.lines if "AIML104" in line and "requirements.txt:1" in line]
    entry = json.loads(_entry(pytester).read_text(encoding="utf-8"))
    kinds = [kind for path, kind, _fingerprint in entry["reads"] if path == "requirements.txt"]
    assert kinds[0] == "text:2000000"


def test_edited_file_is_checked_again(pytester: pytest.Pytester, checks: list[int]) -> None:
    pytester.makefile(".txt", requirements="torch==2.1.0\n")
    assert _outcome(pytester.runpytest(*ARGS, "-rA"), VULNERABLE) == "FAILED"
    pytester.makefile(".txt", requirements="torch==2.6.0\n")
    assert _outcome(pytester.runpytest(*ARGS, "-rA"), VULNERABLE) == "PASSED"
    assert len(checks) == 2


def test_new_file_is_checked_again(pytester: pytest.Pytester, checks: list[int]) -> None:
    pytester.makefile(".txt", requirements="numpy==1.26.4\n")
    assert _outcome(pytester.runpytest(*ARGS, "-rA"), VULNERABLE) == "PASSED"
    # No rule read this file before it existed, but the repository's listing changed.
    pytester.makefile(".txt", **{"requirements-serve": "fastapi==0.100.0\n"})
    assert _outcome(pytester.runpytest(*ARGS, "-rA"), VULNERABLE) == "FAILED"
    assert len(checks) == 2


def test_edited_data_file_is_scanned_again(pytester: pytest.Pytester, checks: list[int]) -> None:
    data = pytester.path / "data"
    data.mkdir()
    (data / "people.tsv").write_text("name\tssn\tnote\nAnn\t123-45-6789\tok\nBo\t\tmissing\n")
    assert _outcome(pytester.runpytest(*ARGS, "-rA"), "AIML601-pii-in-data") == "FAILED"
    (data / "people.tsv").write_text("name\tscore\tnote\nAnn\t0.5\tok\nBo\t\tmissing\n")
    assert _outcome(pytester.runpytest(*ARGS, "-rA"), "AIML601-pii-in-data") == "PASSED"
    assert len(checks) == 2


def test_changed_waiver_needs_no_new_check(pytester: pytest.Pytester, checks: list[int]) -> None:
    pytester.makefile(".txt", requirements="torch==2.1.0\n")
    pytester.runpytest(*ARGS).assert_outcomes(failed=1, passed=17)
    pytester.makepyprojecttoml(
        '[[tool.pytest-aiml.waivers]]\nrules = ["AIML104"]\nreason = "pinned by the platform team"\n'
    )
    waived = pytester.runpytest(*ARGS, "-rA")
    waived.assert_outcomes(xfailed=1, passed=17)
    # pyproject.toml is a new file, so the listing changed once; the next waiver edit reuses the results.
    pytester.makepyprojecttoml(
        '[[tool.pytest-aiml.waivers]]\nrules = ["AIML104"]\nreason = "pinned by the platform team until 2.6"\n'
    )
    pytester.runpytest(*ARGS).assert_outcomes(xfailed=1, passed=17)
    assert len(checks) == 3


def test_nothing_is_cached_without_the_cache(pytester: pytest.Pytester, checks: list[int]) -> None:
    pytester.makefile(".txt", requirements="torch==2.1.0\n")
    pytester.runpytest(*ARGS, "--aiml-no-cache").assert_outcomes(failed=1, passed=17)
    pytester.runpytest(*ARGS, "--aiml-no-cache").assert_outcomes(failed=1, passed=17)
    assert not _entry(pytester).exists()
    pytester.runpytest(*ARGS, "-p", "no:cacheprovider").assert_outcomes(failed=1, passed=17)
    assert len(checks) == 3


def test_damaged_entry_is_a_miss(pytester: pytest.Pytester, checks: list[int]) -> None:
    pytester.makefile(".txt", requirements="torch==2.1.0\n")
    pytester.runpytest(*ARGS).assert_outcomes(failed=1, passed=17)
    _entry(pytester).write_text('{"key": 1}', encoding="utf-8")
    pytester.runpytest(*ARGS).assert_outcomes(failed=1, passed=17)
    assert len(checks) == 2


RAISING_RULE_CONFTEST = '''
from pytest_aiml.engine.rule import Category, Effort, Example, Priority, RepoRule


class BrokenRepositoryRule(RepoRule):
    code = "AIML951"
    slug = "broken-repository-rule"
    category = Category.MLOPS
    priority = Priority.LOW
    effort = Effort.LOW
    message = "never reported"
    impact = "none"
    fix = "none"
    VALID = (Example(files={"a.txt": "a"}),)
    INVALID = (Example(files={"b.txt": "b"}),)

    def check(self, inventory):
        raise LookupError("the inventory has no such table")


def pytest_aiml_register_rules(registry):
    registry.add(BrokenRepositoryRule)
'''


def test_raising_rule_fails_only_its_item(pytester: pytest.Pytester, checks: list[int]) -> None:
    pytester.makeconftest(RAISING_RULE_CONFTEST)
    pytester.makefile(".txt", requirements="torch==2.1.0\n")
    result = pytester.runpytest(*ARGS, "-rA")
    assert _outcome(result, "AIML951-broken-repository-rule") == "FAILED"
    assert _outcome(result, VULNERABLE) == "FAILED"
    result.stdout.fnmatch_lines(
        ["*AIML951 raised an exception while checking the repository:*", "*LookupError: the inventory has no such table*"]
    )
    # The rule's own traceback, not the frames of pytest and pluggy that ran the item.
    assert "site-packages/_pytest/runner.py" not in result.stdout.str()
    assert not _entry(pytester).exists()
    pytester.runpytest(*ARGS)
    assert len(checks) == 2


@pytest.mark.parametrize("modules", [1, 30])
def test_xdist_outcomes_match_a_plain_run(pytester: pytest.Pytester, modules: int) -> None:
    # With 30 modules, one worker scans them over the process pool for both workers.
    pytester.makefile(".txt", requirements="torch==2.1.0\nfastapi==0.100.0\n")
    pytester.makepyfile(serve="import pickle\n\n\ndef load(stream):\n    return pickle.load(stream)\n")
    pytester.makepyfile(**{f"module_{index:02d}": TRAIN if index % 5 == 0 else "import json\n" for index in range(modules)})
    plain = pytester.runpytest(*ARGS, "-p", "no:cacheprovider", "-rA")
    cold = pytester.runpytest(*ARGS, "-n", "2", "-rA")
    warm = pytester.runpytest(*ARGS, "-n", "2", "-rA")
    assert plain.parseoutcomes() == cold.parseoutcomes() == warm.parseoutcomes()
    for run in (cold, warm):
        assert _outcome(run, VULNERABLE) == _outcome(plain, VULNERABLE) == "FAILED"
    assert _entry(pytester).exists()


TRAIN = (
    "import torch\n\n\n"
    "def fit(model, loader, optimizer):\n"
    "    for inputs, targets in loader:\n"
    "        loss = torch.nn.functional.mse_loss(model(inputs), targets)\n"
    "        loss.backward()\n"
    "        optimizer.step()\n"
)


def test_comment_added_to_a_module_reuses_the_results(pytester: pytest.Pytester, checks: list[int]) -> None:
    pytester.makepyfile(train=TRAIN)
    assert _outcome(pytester.runpytest(*ARGS, "-rA"), "AIML401-no-experiment-tracking") == "FAILED"
    # The rules read the module through its signals and its imports, which a comment leaves alone.
    pytester.makepyfile(train=TRAIN.replace("    for inputs", "    # one pass over the data\n    for inputs"))
    assert _outcome(pytester.runpytest(*ARGS, "-rA"), "AIML401-no-experiment-tracking") == "FAILED"
    assert len(checks) == 1
    pytester.makepyfile(train="import mlflow\n" + TRAIN)
    assert _outcome(pytester.runpytest(*ARGS, "-rA"), "AIML401-no-experiment-tracking") == "PASSED"
    assert len(checks) == 2


def test_edit_keeping_constants_reuses_results(pytester: pytest.Pytester, checks: list[int]) -> None:
    serve = "import torch\nFEATURE_MEANS = [0.5, 12.5]\nmodel = torch.load('m.pt', weights_only=True)\n"
    pytester.makepyfile(train="FEATURE_MEANS = [0.5, 12.0]\nmodel.fit(x)\n", serve=serve)
    differ = "AIML804-preprocessing-constants-differ"
    assert _outcome(pytester.runpytest(*ARGS, "-rA"), differ) == "FAILED"
    # AIML804 reads each module's constants, which a new function leaves as they are.
    pytester.makepyfile(train="FEATURE_MEANS = [0.5, 12.0]\nmodel.fit(x)\n\n\ndef evaluate(model):\n    return model.score()\n")
    assert _outcome(pytester.runpytest(*ARGS, "-rA"), differ) == "FAILED"
    assert len(checks) == 1
    pytester.makepyfile(train="FEATURE_MEANS = [0.5, 12.5]\nmodel.fit(x)\n")
    assert _outcome(pytester.runpytest(*ARGS, "-rA"), differ) == "PASSED"
    assert len(checks) == 2


def test_background_check_matches_one_process(pytester: pytest.Pytester) -> None:
    # Enough modules for the pool, whose end starts the repository rules in a process of their own.
    pytester.makepyfile(**{f"module_{index:02d}": TRAIN if index % 5 == 0 else "import json\n" for index in range(30)})
    pytester.makefile(".txt", requirements="torch==2.1.0\n")
    pooled = pytester.runpytest(*ARGS, "-rA", "--aiml-jobs=2", "--aiml-report=pooled.yaml")
    assert _outcome(pooled, VULNERABLE) == "FAILED"
    assert _entry(pytester).exists(), "the background process wrote the cache entry"
    single = pytester.runpytest(*ARGS, "-rA", "--aiml-jobs=1", "--aiml-no-cache", "--aiml-report=single.yaml")
    assert pooled.parseoutcomes() == single.parseoutcomes()
    assert [line for line in pooled.stdout.lines if line.startswith(("PASSED", "FAILED"))] == [
        line for line in single.stdout.lines if line.startswith(("PASSED", "FAILED"))
    ]
    assert "MLOps maturity level: 0 of 3" in pooled.stdout.str()


HELPER_RULE_CONFTEST = '''
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.rule import Category, Effort, Example, Priority, RepoRule
from promptrules import headers


class UnversionedPrompt(RepoRule):
    code = "AIML952"
    slug = "unversioned-prompt"
    category = Category.MLOPS
    priority = Priority.LOW
    effort = Effort.LOW
    message = "a prompt file has no version header"
    impact = "Without a version, a changed prompt cannot be traced to the answers it gave."
    fix = "Start each prompt file with a version header."
    VALID = (Example(files={"prompts/a.txt": "version: 1\\\\nAnswer.\\\\n"}),)
    INVALID = (Example(files={"prompts/a.txt": "Answer.\\\\n"}),)

    def check(self, inventory):
        for path in inventory.prompt_files:
            if not headers.is_versioned(inventory.repo.read_text(path) or ""):
                yield Finding(code=self.code, path=path, message=f"{path} has no version header")


def pytest_aiml_register_rules(registry):
    registry.add(UnversionedPrompt)
'''


def test_edited_rule_helper_is_checked_again(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HELPER_RULE_CONFTEST)
    package = pytester.mkpydir("promptrules")
    (package / "headers.py").write_text("def is_versioned(text):\n    return text.startswith('version:')\n")
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "answer.txt").write_text("version: 3\nAnswer from the context only.\n")
    args = (*ARGS, "-rA", "--aiml-select=AIML952")
    assert _outcome(pytester.runpytest(*args), "AIML952-unversioned-prompt") == "PASSED"
    (package / "headers.py").write_text("def is_versioned(text):\n    return text.startswith('# prompt-version:')\n")
    assert _outcome(pytester.runpytest(*args), "AIML952-unversioned-prompt") == "FAILED"
