"""The experiment-tracking repository rule on small repositories built in a temporary folder."""

from __future__ import annotations

from pytest_aiml.engine.discovery import discover
from pytest_aiml.engine.inventory import build_inventory
from pytest_aiml.rules.mlops import NoExperimentTracking

TRAIN_LOOP = "def train(model, optimizer, loss):\n    loss.backward()\n    optimizer.step()\n"


def _findings(tmp_path, files: dict[str, str]):
    for relative, content in files.items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return list(NoExperimentTracking().check(build_inventory(discover(tmp_path))))


def test_tracking_finding_lists_five_files(tmp_path):
    files = {f"jobs/train_{index}.py": TRAIN_LOOP for index in range(7)}
    findings = _findings(tmp_path, files)
    assert len(findings) == 1
    finding = findings[0]
    assert finding.path == "jobs/train_0.py"
    assert finding.line == 0
    assert "training code in 7 files" in finding.message
    assert "jobs/train_4.py and 2 more" in finding.message
    assert "jobs/train_5.py" not in finding.message


def test_lock_file_tracker_ignored(tmp_path):
    files = {"train.py": TRAIN_LOOP, "poetry.lock": '[[package]]\nname = "tensorboard"\nversion = "2.16.0"\n'}
    assert len(_findings(tmp_path, files)) == 1


def test_tracker_in_requirements_counts(tmp_path):
    assert _findings(tmp_path, {"train.py": TRAIN_LOOP, "requirements.txt": "mlflow==2.14.0\n"}) == []


def test_torch_tensorboard_import_counts(tmp_path):
    files = {"train.py": "from torch.utils.tensorboard import SummaryWriter\n" + TRAIN_LOOP}
    assert _findings(tmp_path, files) == []


def test_trainer_report_to_counts(tmp_path):
    files = {"train.py": TRAIN_LOOP, "args.py": "args = TrainingArguments('out', report_to=['mlflow'])\n"}
    assert _findings(tmp_path, files) == []


def test_tracker_in_tests_ignored(tmp_path):
    files = {"train.py": TRAIN_LOOP, "tests/test_train.py": "import wandb\n"}
    assert len(_findings(tmp_path, files)) == 1


def test_no_training_code_no_finding(tmp_path):
    assert _findings(tmp_path, {"serve.py": "import joblib\nmodel = joblib.load('m.joblib')\n"}) == []


# -- AIML404 to AIML409 ------------------------------------------------------------------

from pytest_aiml.report.build import mlops_maturity, training_section  # noqa: E402
from pytest_aiml.rules.mlops import (  # noqa: E402
    ManualDeployment,
    NoFeatureStore,
    NoModelDocumentation,
    NotebookInProduction,
    UntestedMlModule,
)

SKLEARN_TRAIN = "from sklearn.linear_model import Ridge\nmodel = Ridge().fit(X, y)\n"
APP = (
    "import joblib\nfrom fastapi import FastAPI\n\napp = FastAPI()\nmodel = joblib.load('model_v1.joblib')\n\n"
    "@app.post('/predict')\ndef predict(x: list[float]):\n    return {'y': model.predict([x]).tolist()}\n"
)


def _check(rule, tmp_path, files: dict[str, str]):
    for relative, content in files.items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return list(rule().check(build_inventory(discover(tmp_path))))


def test_azure_devops_pipeline_counts_as_ci(tmp_path):
    pipeline = "trigger:\n  branches:\n    include: [main]\npool:\n  vmImage: ubuntu-latest\nsteps:\n- script: pytest\n"
    assert _check(ManualDeployment, tmp_path, {"train.py": SKLEARN_TRAIN, ".pipelines/ci.yml": pipeline}) == []


def test_lint_only_ci_named_in_message(tmp_path):
    workflow = "jobs:\n  lint:\n    steps:\n      - run: ruff check .\n"
    (finding,) = _check(ManualDeployment, tmp_path, {"app.py": APP, ".github/workflows/lint.yml": workflow})
    assert finding.path == "app.py"
    assert finding.message == (
        "models are served by app.py, and the CI files (.github/workflows/lint.yml) run no tests, build, "
        "training or deployment"
    )


def test_library_fit_wrapper_not_training(tmp_path):
    files = {"integrations/sklearn.py": "def fit(model, X, y):\n    return model.fit(X, y)\n"}
    assert _check(ManualDeployment, tmp_path, files) == []
    assert _check(NoModelDocumentation, tmp_path, files) == []


def test_feature_store_finding_names_both_sides(tmp_path):
    files = {
        "churn/__init__.py": "",
        "churn/features.py": "def build(df):\n    return df\n",
        "churn/train.py": "from churn.features import build\nfrom sklearn.svm import SVC\nSVC().fit(build(X), y)\n",
        "churn/serve.py": APP.replace("import joblib\n", "import joblib\nfrom churn import features\n"),
    }
    (finding,) = _check(NoFeatureStore, tmp_path, files)
    assert finding.path == "churn/features.py"
    assert "feed both training (churn/train.py) and serving (churn/serve.py)" in finding.message


def test_model_card_section_in_docs_counts(tmp_path):
    readme = "# Project\n\n## The model\nIntended use: triage.\n\nEvaluation: F1 0.81 on the 2024 hold-out set.\n"
    assert _check(NoModelDocumentation, tmp_path, {"train.py": SKLEARN_TRAIN, "README.md": readme}) == []


def test_model_documentation_finding_on_readme(tmp_path):
    (finding,) = _check(NoModelDocumentation, tmp_path, {"train.py": SKLEARN_TRAIN, "README.md": "# Ridge\n"})
    assert finding.path == "README.md"
    assert finding.message.startswith("models are trained in train.py, and no model card")


def test_notebook_runner_in_serving_module(tmp_path):
    files = {"app.py": APP.replace("import joblib\n", "import joblib\nimport papermill as pm\n") + "pm.execute_notebook('a.ipynb', 'b.ipynb')\n"}
    (finding,) = _check(NotebookInProduction, tmp_path, files)
    assert (finding.path, finding.line) == ("app.py", 11)
    assert finding.message == "serving module app.py executes notebooks with papermill"


def test_untested_module_per_file_without_tests(tmp_path):
    # One finding per module, so that a waive-file comment in one module covers that module alone.
    files = {f"jobs/train_{index}.py": SKLEARN_TRAIN for index in range(3)}
    findings = _check(UntestedMlModule, tmp_path, files)
    assert [finding.path for finding in findings] == ["jobs/train_0.py", "jobs/train_1.py", "jobs/train_2.py"]
    assert findings[0].message == "the repository has no tests, so no test imports jobs/train_0.py"


def test_untested_module_per_file(tmp_path):
    files = {
        "pkg/__init__.py": "",
        "pkg/train.py": SKLEARN_TRAIN,
        "pkg/app.py": APP,
        "tests/test_app.py": "from pkg.app import app\n",
    }
    findings = _check(UntestedMlModule, tmp_path, files)
    assert [(finding.path, finding.message) for finding in findings] == [
        ("pkg/train.py", "no test imports pkg/train.py, directly or through another module")
    ]


def test_from_import_of_submodule_counts(tmp_path):
    files = {"pkg/__init__.py": "", "pkg/train.py": SKLEARN_TRAIN, "tests/test_train.py": "from pkg import (\n    train,\n)\n"}
    assert _check(UntestedMlModule, tmp_path, files) == []


def test_report_scheduled_pipeline_retrains(tmp_path):
    files = {
        "train.py": SKLEARN_TRAIN,
        "dags/retrain.py": "from airflow import DAG\nwith DAG('retrain', schedule_interval='@weekly') as dag:\n    pass\n",
    }
    for relative, content in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(content, encoding="utf-8")
    inventory = build_inventory(discover(tmp_path))
    section = training_section(inventory)
    assert section["automated_retraining"] is True
    assert section["pipeline_orchestrator"] == "airflow"


def test_report_ray_serve_is_not_distributed_training(tmp_path):
    (tmp_path / "serve.py").write_text("from ray import serve\nimport ray\n", encoding="utf-8")
    assert training_section(build_inventory(discover(tmp_path)))["distributed_training"] is False


def test_report_ci_cd_with_jenkinsfile_in_folder(tmp_path):
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "Jenkinsfile").write_text("sh 'pytest'\nsh 'kubectl apply -f k8s/'\n", encoding="utf-8")
    (tmp_path / "train.py").write_text(SKLEARN_TRAIN, encoding="utf-8")
    assert mlops_maturity(build_inventory(discover(tmp_path)))["ci_cd"] == "present"
