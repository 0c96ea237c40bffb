"""MLOps rules: repository-wide practice around training, delivery and documentation of models."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from pytest_aiml.engine.discovery import FileKind, is_test_path
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.inventory import Inventory
from pytest_aiml.engine.rule import Category, Effort, Example, Priority, RepoRule
from pytest_aiml.engine.views import QUOTE_DELIMITERS, QuotedNames
from pytest_aiml.rules.deployment import EXAMPLE_FOLDER, direct_pins, module_graph, module_names, serving_apps

#: Text signals of logging to a tracker without importing its package (Keras and
#: Lightning callbacks, ``SummaryWriter``, Hugging Face ``report_to=``).
TRACKER_SIGNALS = ("tensorboard", "lightning_logger", "trainer_report_to")
#: Tracker packages as dependency files name them. A declared tracker counts as used,
#: because integrations log to it without an import: the Hugging Face Trainer's
#: ``report_to`` defaults to every installed tracker in transformers 4.
TRACKER_PACKAGES = frozenset(
    {
        "mlflow", "mlflow-skinny", "wandb", "neptune", "neptune-client", "tensorboard", "tensorboardx",
        "comet-ml", "aim", "clearml", "dvclive", "sacred", "guildai", "polyaxon", "trackio", "swanlab",
    }
)
_SHOWN_FILES = 5


class NoExperimentTracking(RepoRule):
    """Flag a repository that trains models and records its runs nowhere."""

    code = "AIML401"
    slug = "no-experiment-tracking"
    category = Category.MLOPS
    priority = Priority.HIGH
    effort = Effort.LOW
    anti_pattern = "No experiment tracking"
    message = "training code exists but no experiment tracker is used"
    impact = (
        "Without recorded parameters, metrics, code versions and artifacts, no result can be reproduced "
        "or compared, and nobody can tell which run produced the model in production."
    )
    fix = (
        "Log every training run to a tracker: mlflow.autolog() or mlflow.log_params/log_metrics, "
        "wandb.init/wandb.log, a Lightning logger (MLFlowLogger, WandbLogger), or TensorBoard's "
        "SummaryWriter; record the dataset version and the git commit with each run."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        training = sorted(inventory.training_files)
        if not training or self._tracker_used(inventory):
            return
        files = "1 file" if len(training) == 1 else f"{len(training)} files"
        file_list = ", ".join(training[:_SHOWN_FILES])
        more = len(training) - _SHOWN_FILES
        if more > 0:
            file_list += f" and {more} more"
        yield Finding(
            code=self.code,
            path=training[0],
            message=(
                f"training code in {files} ({file_list}) and no experiment tracker "
                "(MLflow, Weights & Biases, Neptune, TensorBoard, Comet, Aim, ClearML, a Lightning logger) "
                "is used anywhere"
            ),
        )

    @staticmethod
    def _tracker_used(inventory: Inventory) -> bool:
        if inventory.labels("tracker"):
            return True
        if any(inventory.files_with(signal) for signal in TRACKER_SIGNALS):
            return True
        # Lock files list transitive dependencies too, so only direct requirements count.
        return any(
            not pin.source.endswith(".lock") and "lock" not in pin.source.rsplit("/", 1)[-1]
            for package in TRACKER_PACKAGES
            for pin in inventory.pins.get(package, ())
        )


_TRAIN_LOOP = (
    "import torch\n\ndef train(model, loader, optimizer):\n    for x, y in loader:\n"
    "        loss = torch.nn.functional.cross_entropy(model(x), y)\n        optimizer.zero_grad()\n"
    "        loss.backward()\n        optimizer.step()\n"
)

NoExperimentTracking.VALID = (
    Example(files={"train.py": "import mlflow\n" + _TRAIN_LOOP + "    mlflow.log_metric('loss', loss.item())\n"}),
    Example(
        files={
            "src/model.py": "from sklearn.linear_model import LogisticRegression\nclf = LogisticRegression().fit(X, y)\n",
            "src/tracking.py": "import wandb\nwandb.init(project='churn')\n",
        }
    ),
    Example(
        files={
            "train.py": "import lightning as L\nfrom lightning.pytorch.loggers import CSVLogger\n"
            "trainer = L.Trainer(logger=CSVLogger('logs'))\ntrainer.fit(model)\n"
        }
    ),
    Example(
        files={
            "train.py": "from torch.utils.tensorboard import SummaryWriter\nwriter = SummaryWriter()\n" + _TRAIN_LOOP,
        }
    ),
    Example(files={"serve.py": "import joblib\nmodel = joblib.load('m.joblib')\nprint(model.predict(X))\n"}),
    Example(
        files={
            "finetune.py": "from transformers import Trainer, TrainingArguments\n"
            "args = TrainingArguments('out', report_to='wandb')\nTrainer(model=m, args=args).train()\nm.fit(x)\n"
        }
    ),
    Example(files={"train.py": _TRAIN_LOOP, "requirements.txt": "torch\nwandb>=0.16\n"}),
    Example(files={"tests/test_train.py": _TRAIN_LOOP}),
)
NoExperimentTracking.INVALID = (
    Example(files={"train.py": _TRAIN_LOOP}),
    Example(
        files={
            "pipeline/fit.py": "from sklearn.ensemble import RandomForestClassifier\n"
            "model = RandomForestClassifier().fit(X_train, y_train)\n",
            "requirements.txt": "scikit-learn==1.5.0\n",
        }
    ),
    Example(
        files={
            "train.py": "import lightning as L\ntrainer = L.Trainer(max_epochs=3)\ntrainer.fit(model, loader)\n",
            "tests/test_logging.py": "import mlflow\n",
        }
    ),
    Example(files={"notebooks/explore.ipynb": '{"cells": [{"cell_type": "code", "source": ["model.fit(X, y)\\n"], '
                   '"metadata": {}, "outputs": [], "execution_count": null}], "metadata": {}, "nbformat": 4, '
                   '"nbformat_minor": 5}'}),
)


def _listing(items: list[str], shown: int = _SHOWN_FILES) -> str:
    text = ", ".join(items[:shown])
    return text + (f" and {len(items) - shown} more" if len(items) > shown else "")


def training_modules(inventory: Inventory) -> list[str]:
    """Return the Python files (notebooks excepted) that contain training code."""
    return [path for path in inventory.training_files if path.endswith(".py")]


def training_entry_points(inventory: Inventory) -> list[str]:
    """Return the training modules that run as programs: ``train*.py`` names or a ``__main__`` guard.

    A library module that only wraps ``fit`` (a framework integration) trains nothing by itself.
    """
    scripts = set(inventory.training_scripts)
    guarded = {signals.path for signals in inventory.code if "main_guard" in signals.signals}
    return [
        path for path in training_modules(inventory)
        if path in scripts and (path in guarded or not _LIBRARY_MODULE_NAME.search(path.rsplit("/", 1)[-1]))
    ]


#: ``trainer.py`` and ``train_utils.py`` hold a library's training code; they run only through a main guard.
_LIBRARY_MODULE_NAME = re.compile(r"trainer|util|helper|common|base|lib", re.IGNORECASE)


# -- AIML404 manual-deployment -----------------------------------------------------------


class ManualDeployment(RepoRule):
    """Flag a repository that trains or serves models and has no CI that tests, builds or deploys them."""

    code = "AIML404"
    slug = "manual-deployment"
    category = Category.MLOPS
    priority = Priority.HIGH
    effort = Effort.MEDIUM
    anti_pattern = "Manual deployment process"
    message = "models are trained or served and no CI workflow tests, builds or deploys them"
    impact = (
        "Without a pipeline every release depends on someone running the right commands on the right "
        "machine: untested models reach production, and nobody can tell which commit a deployment came from."
    )
    fix = (
        "Add a CI workflow (GitHub Actions, GitLab CI, CircleCI, Jenkins, Azure Pipelines, Buildkite, "
        "Bitbucket Pipelines, Cloud Build) that runs the tests on every change and builds and deploys "
        "the model or service image from the main branch."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        training = training_entry_points(inventory)
        apps = [app.root for app in serving_apps(inventory)]
        if not training and not apps:
            return
        text = inventory.text
        if text.ci_tests or text.ci_builds or text.ci_deploys or text.ci_trains:
            return
        parts = []
        if training:
            parts.append(f"trained in {_listing(training)}")
        if apps:
            parts.append(f"served by {_listing(apps)}")
        subject = "models are " + " and ".join(parts)
        if text.ci_files:
            detail = f"the CI files ({_listing(list(text.ci_files))}) run no tests, build, training or deployment"
        else:
            detail = (
                "no CI workflow (GitHub Actions, GitLab CI, CircleCI, Jenkinsfile, Azure Pipelines, Buildkite, "
                "Bitbucket Pipelines, Cloud Build) tests, builds or deploys them"
            )
        yield Finding(code=self.code, path=(apps or training)[0], message=f"{subject}, and {detail}")


_SKLEARN_TRAIN = (
    "import joblib\nfrom sklearn.linear_model import LogisticRegression\n\n"
    "model = LogisticRegression(max_iter=200).fit(X_train, y_train)\njoblib.dump(model, 'model.joblib')\n"
)
_SERVE = (
    "import joblib\nfrom fastapi import FastAPI\n\napp = FastAPI()\nmodel = joblib.load('model.joblib')\n\n"
    "@app.post('/predict')\ndef predict(x: list[float]):\n    return {'y': model.predict([x]).tolist()}\n"
)
_WORKFLOW = "on: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n"

ManualDeployment.VALID = (
    Example(files={"train.py": _SKLEARN_TRAIN, ".github/workflows/ci.yml": _WORKFLOW + "      - run: pytest -q\n"}),
    Example(files={"app.py": _SERVE, ".gitlab-ci.yml": "build:\n  script:\n    - docker build -t churn .\n"}),
    Example(files={"app.py": _SERVE, "Jenkinsfile": "pipeline { stages { stage('Test') { steps { sh 'make test' } } } }\n"}),
    Example(files={"train.py": _SKLEARN_TRAIN, "ci/Jenkinsfile": "sh 'python -m pytest'\n"}),
    Example(files={"train.py": _SKLEARN_TRAIN, "cloudbuild.yaml": "steps:\n- name: gcr.io/cloud-builders/docker\n  args: ['build', '-t', 'img', '.']\n  entrypoint: bash\n  script: docker build .\n"}),
    Example(files={"train.py": _SKLEARN_TRAIN, "azure-pipelines-train.yml": "steps:\n- script: python train.py\n"}),
    # A library or a notebook-only analysis neither trains in modules nor serves.
    Example(files={"utils.py": "def add(a, b):\n    return a + b\n"}),
    Example(files={"analysis.ipynb": '{"cells": [{"cell_type": "code", "source": ["model.fit(X, y)\\n"], '
                   '"metadata": {}, "outputs": [], "execution_count": null}], "metadata": {}, "nbformat": 4, '
                   '"nbformat_minor": 5}'}),
    Example(files={"tests/test_train.py": _SKLEARN_TRAIN}),
    # Azure DevOps pipelines kept under .pipelines/.
    Example(
        files={
            "model/train.py": _SKLEARN_TRAIN,
            ".pipelines/model-ci.yml": "trigger:\n  branches:\n    include: [main]\npool:\n  vmImage: ubuntu-latest\n"
            "steps:\n- script: python -m pytest tests\n",
        }
    ),
    # A framework integration that wraps fit() is library code, not a training program.
    Example(files={"src/lib/frameworks/sklearn.py": "def save_fitted(model, X, y):\n    return model.fit(X, y)\n"}),
)
ManualDeployment.INVALID = (
    Example(files={"train.py": _SKLEARN_TRAIN}),
    Example(files={"train.py": _SKLEARN_TRAIN, "app.py": _SERVE, "Makefile": "deploy:\n\tdocker build -t churn .\n"}),
    Example(files={"app.py": _SERVE, ".github/workflows/lint.yml": _WORKFLOW + "      - run: ruff check .\n"}),
)


# -- AIML406 no-feature-store ------------------------------------------------------------

_FEATURE_MODULE = re.compile(
    r"(^|/)(features?|feature_engineering|featurizers?|feature_pipelines?)/|(^|/)[\w-]*(feature|featuriz)[\w-]*\.py$",
    re.IGNORECASE,
)
FEATURE_STORE_PACKAGES = (
    "feast", "tecton", "hopsworks", "hsfs", "featureform", "databricks-feature-store", "databricks-feature-engineering",
)


def feature_modules(inventory: Inventory) -> list[str]:
    """Return the feature-engineering modules: by folder or name, or by the transformers they use.

    A ``features/steps`` folder contains behave step definitions, not features of a model.
    """
    transforms = set(inventory.files_with("feature_transform"))
    return sorted(
        path
        for path in (signals.path for signals in inventory.code)
        if path.endswith(".py") and not is_test_path(path) and "features/steps/" not in path
        and (_FEATURE_MODULE.search(path) or path in transforms)
    )


def feature_store_evidence(inventory: Inventory) -> list[str]:
    found = list(inventory.labels("feature_store"))
    found += inventory.files_with("feature_store_api")[:1]
    found += direct_pins(inventory, FEATURE_STORE_PACKAGES)
    found += [path for path in inventory.repo.paths if path.rsplit("/", 1)[-1] == "feature_store.yaml"]
    return found


class NoFeatureStore(RepoRule):
    """Report feature code that training and serving share without a feature store (informational)."""

    code = "AIML406"
    slug = "no-feature-store"
    category = Category.MLOPS
    priority = Priority.MEDIUM
    effort = Effort.HIGH
    anti_pattern = "No feature store"
    message = "feature code is shared by training and serving without a feature store (informational)"
    impact = (
        "Features computed separately for training and at request time drift apart (training-serving "
        "skew), cannot be served from precomputed values, and cannot be reused or backfilled "
        "point-in-time correctly by other models."
    )
    fix = (
        "Define the shared features once in a feature store (Feast, Tecton, Hopsworks, Featureform, or the "
        "SageMaker, Vertex AI or Databricks feature store): build training sets with point-in-time joins "
        "and read the same features online at serving time. A small project may waive this rule."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        apps = serving_apps(inventory)
        training = training_modules(inventory)
        if not apps or not training:
            return
        features = set(feature_modules(inventory))
        graph = module_graph(inventory)
        serving_side = {path for app in apps for path in app.closure}
        training_side = set(graph.closure(training, depth=3))
        shared = sorted(features & serving_side & training_side)
        if not shared or feature_store_evidence(inventory):
            return
        users = sorted(path for path in training if shared[0] in graph.closure([path], depth=3))
        app_roots = sorted(app.root for app in apps if shared[0] in app.closure)
        yield Finding(
            code=self.code,
            path=shared[0],
            message=(
                f"features computed in {_listing(shared)} feed both training ({_listing(users or training)}) and "
                f"serving ({_listing(app_roots)}) and no feature store (Feast, Tecton, Hopsworks, Featureform, "
                "SageMaker, Vertex AI or Databricks) serves them; informational"
            ),
        )


_FEATURES = "import pandas as pd\n\ndef build_features(df):\n    df['ratio'] = df.a / df.b\n    return df\n"
_TRAIN_WITH_FEATURES = (
    "from sklearn.ensemble import RandomForestClassifier\nfrom churn.features import build_features\n\n"
    "model = RandomForestClassifier(n_estimators=100).fit(build_features(frame), labels)\n"
)
_SERVE_WITH_FEATURES = (
    "import joblib\nfrom fastapi import FastAPI\nfrom churn.features import build_features\n\napp = FastAPI()\n"
    "model = joblib.load('model_v1.joblib')\n\n@app.post('/predict')\ndef predict(row: dict):\n"
    "    return {'y': model.predict(build_features(row)).tolist()}\n"
)
_SHARED_FEATURES = {
    "churn/__init__.py": "",
    "churn/features.py": _FEATURES,
    "churn/train.py": _TRAIN_WITH_FEATURES,
    "churn/app.py": _SERVE_WITH_FEATURES,
}

NoFeatureStore.VALID = (
    Example(files={**_SHARED_FEATURES, "churn/store.py": "from feast import FeatureStore\nstore = FeatureStore('repo')\n"}),
    Example(files={**_SHARED_FEATURES, "requirements.txt": "feast==0.40.1\n"}),
    Example(files={**_SHARED_FEATURES, "feature_repo/feature_store.yaml": "project: churn\nprovider: local\n"}),
    # Features used only in training, or a serving app that computes its own.
    Example(files={"churn/__init__.py": "", "churn/features.py": _FEATURES, "churn/train.py": _TRAIN_WITH_FEATURES}),
    Example(
        files={
            "churn/__init__.py": "", "churn/features.py": _FEATURES, "churn/train.py": _TRAIN_WITH_FEATURES,
            "churn/app.py": _SERVE_WITH_FEATURES.replace("from churn.features import build_features\n", "")
            + "def build_features(row):\n    return [row]\n",
        }
    ),
    # behave's features/steps are acceptance tests.
    Example(
        files={
            "features/steps/predict_steps.py": "from churn.app import model\n",
            "churn/__init__.py": "", "churn/app.py": _SERVE, "churn/train.py": _SKLEARN_TRAIN,
        }
    ),
)
NoFeatureStore.INVALID = (
    Example(files=_SHARED_FEATURES),
    Example(
        files={
            "src/features/__init__.py": "",
            "src/features/encode.py": "from sklearn.preprocessing import OneHotEncoder\n",
            "src/train.py": "from src.features.encode import OneHotEncoder\nfrom xgboost import XGBClassifier\n"
            "XGBClassifier().fit(X, y)\n",
            "src/serve.py": "import joblib\nfrom flask import Flask\nfrom src.features import encode\n"
            "app = Flask(__name__)\nmodel = joblib.load('model.joblib')\n",
        }
    ),
)


# -- AIML407 no-model-documentation ------------------------------------------------------

_DOC_FILE = re.compile(r"(^|/)(README|readme|Readme)[\w.-]*\.(md|rst|txt)$|(^|/)docs?/[^/]*\.(md|rst)$")
_INTENDED_USE = re.compile(r"intended use|out[- ]of[- ]scope|use cases?|limitations?|caveats|known issues|\bbias\b|ethical", re.IGNORECASE)
_MODEL_RESULTS = re.compile(
    r"\bmetrics?\b|evaluation|\baccuracy\b|\bf1\b|\bauc\b|\brmse\b|\bmae\b|precision|recall|training data|trained on|dataset",
    re.IGNORECASE,
)
_MODEL_HEADING = re.compile(r"^#+\s.*\bmodel\b|^model[^\n]*\n[=-]{3,}", re.IGNORECASE | re.MULTILINE)


def model_documentation(inventory: Inventory) -> list[str]:
    """Return the model cards and the documents with a section on a model's use, results and limits.

    A document counts when it has a Hugging Face ``model-index`` or mentions a model card,
    or when it has a heading about a model and two kinds of content: what the model is for or where it fails (intended use,
    limitations, bias), and how it performs or what it learned from (metrics, evaluation,
    training data).
    """
    found = list(inventory.model_cards)
    for path in inventory.repo.paths:
        if not _DOC_FILE.search(path):
            continue
        text = inventory.repo.read_text(path, limit=500_000) or ""
        if "model-index:" in text or "model_card" in text.lower() or "model card" in text.lower():
            found.append(path)
        elif _MODEL_HEADING.search(text) and _INTENDED_USE.search(text) and _MODEL_RESULTS.search(text):
            found.append(path)
    return found


class NoModelDocumentation(RepoRule):
    """Flag a repository that produces or serves models in code and documents none of them."""

    code = "AIML407"
    slug = "no-model-documentation"
    category = Category.MLOPS
    priority = Priority.MEDIUM
    effort = Effort.LOW
    anti_pattern = "No model documentation"
    message = "models are trained or served and no model card or model documentation exists"
    impact = (
        "Users and reviewers of an undocumented model cannot tell what it is for, what data it learned "
        "from, how well it performs or where it must not be used, so it gets misused and cannot be audited."
    )
    fix = (
        "Write a model card (MODEL_CARD.md, or a README section on the model) with its intended use and "
        "out-of-scope uses, training data, evaluation metrics, and known limitations and biases; for a "
        "Hugging Face model, fill the README's model-index metadata."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        # Committed artifacts are AIML704's: it checks that a card names each of them.
        if inventory.models:
            return
        # Example, tutorial and benchmark scripts train demonstration models that are not deployed.
        training = [path for path in training_entry_points(inventory) if not _DEMONSTRATION_FOLDER.search(path)]
        apps = [app.root for app in serving_apps(inventory)]
        if not training and not apps or model_documentation(inventory):
            return
        parts = []
        if training:
            parts.append(f"trained in {_listing(training)}")
        if apps:
            parts.append(f"served by {_listing(apps)}")
        readme = next((path for path in inventory.repo.paths if re.match(r"README[\w.-]*\.(md|rst)$", path)), None)
        yield Finding(
            code=self.code,
            path=readme or (training or apps)[0],
            message=(
                f"models are {' and '.join(parts)}, and no model card (MODEL_CARD.md, model_card*) or README "
                "section on a model's intended use, metrics and limitations documents them"
            ),
        )


_DEMONSTRATION_FOLDER = re.compile(r"(^|/)(examples?|docs?|tutorials?|demos?|benchmarks?)/")

_CARD = (
    "# Churn model\n\n## Intended use\nRank accounts by churn risk for the retention team.\n\n"
    "## Metrics\nROC AUC 0.87 on the March hold-out set.\n\n## Limitations\nNot calibrated for accounts under 30 days.\n"
)

NoModelDocumentation.VALID = (
    Example(files={"train.py": _SKLEARN_TRAIN, "MODEL_CARD.md": "# Churn model\n"}),
    Example(files={"train.py": _SKLEARN_TRAIN, "README.md": _CARD}),
    Example(files={"train.py": _SKLEARN_TRAIN, "docs/model.md": _CARD}),
    Example(files={"train.py": _SKLEARN_TRAIN, "README.md": "---\nmodel-index:\n- name: churn\n---\n# churn\n"}),
    Example(files={"app.py": _SERVE, "model_card.yaml": "name: churn\n"}),
    # Committed artifacts belong to AIML704.
    Example(files={"train.py": _SKLEARN_TRAIN, "models/churn_v1.onnx": b"\x08\x07"}),
    Example(files={"utils.py": "def add(a, b):\n    return a + b\n", "README.md": "# utils\n"}),
    Example(files={"src/lib/frameworks/catboost.py": "def fit_model(model, pool):\n    return model.fit(pool)\n"}),
    # A framework's examples (pytorch-lightning's examples/fabric/*/train.py) train demonstration models.
    Example(files={"examples/mnist/train.py": _SKLEARN_TRAIN, "README.md": "# A training library\n"}),
    # A training library's Trainer class (pytorch-lightning's trainer/trainer.py) is no entry point.
    Example(files={"src/lib/trainer/trainer.py": _SKLEARN_TRAIN, "README.md": "# A training library\n"}),
)
NoModelDocumentation.INVALID = (
    Example(files={"train.py": _SKLEARN_TRAIN}),
    Example(files={"train.py": _SKLEARN_TRAIN, "README.md": "# Churn\n\nRun `python train.py`, then `uvicorn app:app`.\n"}),
    # A model heading without use, results or limits is not documentation of the model.
    Example(files={"app.py": _SERVE, "README.md": "# Service\n\n## Model\nThe model is loaded from model.joblib.\n"}),
)


# -- AIML408 notebook-in-production ------------------------------------------------------

NOTEBOOK_IMPORTERS = ("import_ipynb", "ipynb.fs", "nbimporter")
NOTEBOOK_RUNNERS = ("papermill", "nbclient", "nbconvert")
_RUNNER_CALL = re.compile(r"execute_notebook\(|NotebookClient\(|ExecutePreprocessor\(|\.execute\(|nbconvert")
_PIPELINE_PATH = re.compile(r"(^|/)(pipelines?|dags|flows|jobs|workflows|steps|tasks)/")
_NOTEBOOK_COMMAND = re.compile(r"papermill\s|nbconvert[^\n]*--execute|runipy\s|ipython\s+[\w/.-]+\.ipynb")


def _first_line(text: str, pattern: re.Pattern[str]) -> int:
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else 0


class NotebookInProduction(RepoRule):
    """Flag production code that imports or executes notebooks, and notebooks shipped in a serving package."""

    code = "AIML408"
    slug = "notebook-in-production"
    category = Category.MLOPS
    priority = Priority.LOW
    effort = Effort.MEDIUM
    anti_pattern = "Jupyter notebooks in production"
    message = "production code imports or executes a Jupyter notebook, or a notebook ships in a serving package"
    impact = (
        "Notebook code runs with hidden state and out-of-order cells, escapes review, linting and tests, and "
        "breaks when a cell is edited for exploration; a pipeline that executes notebooks inherits all of it."
    )
    fix = (
        "Move the code the pipeline or service needs from the notebook into a module with tests and import "
        "that; keep notebooks for exploration, outside the serving package, and let them import the module."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        yield from self._notebook_imports(inventory)
        yield from self._notebook_runs(inventory)
        yield from self._notebooks_in_serving_packages(inventory)

    def _notebook_imports(self, inventory: Inventory) -> Iterator[Finding]:
        for signals in inventory.code:
            if not signals.path.endswith(".py") or is_test_path(signals.path):
                continue
            importers = [module for module in NOTEBOOK_IMPORTERS if signals.imports(module)]
            if not importers:
                continue
            text = inventory.repo.read_text(signals.path) or ""
            pattern = re.compile(rf"^[ \t]*(import|from)[ \t]+{re.escape(importers[0])}\b", re.MULTILINE)
            yield Finding(
                code=self.code,
                path=signals.path,
                line=_first_line(text, pattern),
                message=f"{signals.path} imports notebooks as modules through {importers[0]}",
            )

    def _notebook_runs(self, inventory: Inventory) -> Iterator[Finding]:
        serving = {path for app in serving_apps(inventory) for path in app.closure} | set(inventory.serving_files)
        for signals in inventory.code:
            path = signals.path
            if not path.endswith(".py") or is_test_path(path) or path.startswith(("docs/", "doc/")):
                continue
            runners = [module for module in NOTEBOOK_RUNNERS if signals.imports(module)]
            if not runners:
                continue
            orchestrated = inventory.labels("orchestrator") and any(
                signals.imports(module) for module in ("airflow", "kfp", "prefect", "dagster", "metaflow", "zenml",
                                                       "flytekit", "luigi", "kedro", "sagemaker.workflow")
            )
            if path in serving:
                where = "serving"
            elif orchestrated or _PIPELINE_PATH.search(path):
                where = "pipeline"
            else:
                continue
            text = inventory.repo.read_text(path) or ""
            yield Finding(
                code=self.code,
                path=path,
                line=_first_line(text, _RUNNER_CALL),
                message=f"{where} module {path} executes notebooks with {runners[0]}",
            )
        for path in inventory.text.deployment_files:
            text = inventory.repo.read_text(path, limit=500_000) or ""
            line = _first_line(text, _NOTEBOOK_COMMAND)
            if line:
                yield Finding(code=self.code, path=path, line=line, message=f"{path} executes a notebook")

    def _notebooks_in_serving_packages(self, inventory: Inventory) -> Iterator[Finding]:
        paths = set(inventory.repo.paths)
        packages = set()
        for app in serving_apps(inventory):
            folder = str(PurePosixPath(app.root).parent)
            if folder != "." and f"{folder}/__init__.py" in paths:
                packages.add(folder)
        for notebook in inventory.notebooks:
            package = next((folder for folder in sorted(packages) if notebook.startswith(folder + "/")), None)
            if package is not None:
                yield Finding(
                    code=self.code,
                    path=notebook,
                    message=f"notebook {notebook} sits inside the serving package {package}/ and ships with it",
                )


_NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'

NotebookInProduction.VALID = (
    Example(files={"scripts/run_docs_notebooks.py": "import papermill as pm\npm.execute_notebook('docs/a.ipynb', '/tmp/a.ipynb')\n"}),
    Example(files={"tests/test_notebooks.py": "import papermill\npapermill.execute_notebook('nb.ipynb', 'out.ipynb')\n"}),
    Example(files={"notebooks/explore.ipynb": _NOTEBOOK, "service/__init__.py": "", "service/app.py": _SERVE}),
    Example(files={"service/features.py": "import pandas as pd\n", "notebooks/features.ipynb": _NOTEBOOK}),
    Example(files={"Dockerfile": "FROM python:3.12\nCOPY . .\nCMD [\"uvicorn\", \"app:app\"]\n", "app.py": _SERVE}),
)
NotebookInProduction.INVALID = (
    Example(files={"src/predict.py": "import import_ipynb\nimport preprocessing_notebook\n"}, lines=(1,)),
    Example(files={"serving/app.py": "from fastapi import FastAPI\nfrom ipynb.fs.full.features import build\n"}, lines=(2,)),
    Example(
        files={
            "dags/retrain.py": "from airflow import DAG\nfrom airflow.operators.python import PythonOperator\n"
            "import papermill as pm\n\ndef run():\n    pm.execute_notebook('train.ipynb', 'out.ipynb')\n"
        },
        lines=(6,),
    ),
    Example(files={"service/__init__.py": "", "service/app.py": _SERVE, "service/scratch.ipynb": _NOTEBOOK}),
    Example(files={"Dockerfile": "FROM python:3.12\nCOPY . .\nCMD papermill score.ipynb out.ipynb\n"}, lines=(3,)),
)


# -- AIML409 untested-ml-module ----------------------------------------------------------

def ml_modules(inventory: Inventory) -> list[str]:
    """Return the training, preprocessing and model-serving modules, example and documentation folders excepted."""
    found = set(training_modules(inventory))
    found.update(feature_modules(inventory))
    for app in serving_apps(inventory):
        found.add(app.root)
        found.update(load.path for load in app.models)
    return sorted(
        path for path in found
        if not EXAMPLE_FOLDER.search(path) and not path.endswith(("/__init__.py", "setup.py")) and path != "__init__.py"
    )


class UntestedMlModule(RepoRule):
    """Flag training, preprocessing and serving modules that no test imports, directly or through other modules."""

    code = "AIML409"
    slug = "untested-ml-module"
    category = Category.MLOPS
    priority = Priority.LOW
    effort = Effort.MEDIUM
    anti_pattern = "Missing unit tests"
    message = "a training, preprocessing or serving module is not imported by any test"
    impact = (
        "Untested preprocessing and serving code breaks silently: a changed column order, a dtype or an "
        "edge case (empty batch, missing value) produces wrong predictions instead of a failing build."
    )
    fix = (
        "Add unit tests that import the module and check its behaviour on small inputs: preprocessing "
        "outputs (shapes, dtypes, no NaN), a training step on a tiny batch, and the serving endpoint with "
        "a test client."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        modules = ml_modules(inventory)
        if not modules:
            return
        tests = [path for path in inventory.repo.of_kind(FileKind.PYTHON) if is_test_path(path) and path.endswith(".py")]
        if not tests:
            # One finding per module, as when tests exist, so that a waive-file comment in one
            # module covers that module alone.
            for module in modules:
                yield Finding(code=self.code, path=module, message=f"the repository has no tests, so no test imports {module}")
            return
        tested = set(module_graph(inventory).closure(tests))
        untested = [module for module in modules if module not in tested]
        if not untested:
            return
        # The tests' quoted names, not their texts, so that the result stays valid after an
        # edit elsewhere in a test file.
        quoted = [names for path in tests if (names := inventory.repo.read_view(path, "quoted-names")) is not None]
        for module in untested:
            if not self._named(module, quoted, inventory, tests):
                yield Finding(code=self.code, path=module, message=f"no test imports {module}, directly or through another module")

    @staticmethod
    def _named(module: str, quoted: list[QuotedNames], inventory: Inventory, tests: list[str]) -> bool:
        # Tests that run a script (``subprocess.run(["python", "train.py"])``, ``runpy``) name it:
        # ``"train.py"``, ``"scripts/train.py"`` or ``"pkg.train"``.
        name = PurePosixPath(module).name
        dotted = module_names(module)[0]
        if any(char in QUOTE_DELIMITERS or char == "\n" for char in name + dotted):
            # A name with a quote in it is not one run of the view; search the texts themselves.
            texts = "\n".join(inventory.repo.read_text(path) or "" for path in tests)
            return bool(re.search(rf"[\"'/]{re.escape(name)}[\"']|[\"']{re.escape(dotted)}[\"']", texts))
        return any(names.contains(name) or names.contains(dotted, after_quote=True) for names in quoted)


UntestedMlModule.VALID = (
    Example(files={"churn/__init__.py": "", "churn/train.py": _SKLEARN_TRAIN, "tests/test_train.py": "from churn import train\n"}),
    Example(
        files={
            "src/churn/__init__.py": "", "src/churn/app.py": _SERVE,
            "tests/test_api.py": "from fastapi.testclient import TestClient\nfrom churn.app import app\n",
        }
    ),
    # Tested through another module.
    Example(
        files={
            "pipeline/__init__.py": "", "pipeline/train.py": _SKLEARN_TRAIN,
            "pipeline/run.py": "from . import train\n", "tests/test_run.py": "import pipeline.run\n",
        }
    ),
    Example(files={"train.py": _SKLEARN_TRAIN, "tests/test_cli.py": "import subprocess\nsubprocess.run(['python', 'train.py'])\n"}),
    Example(files={"examples/train.py": _SKLEARN_TRAIN, "docs/app.py": _SERVE}),
    Example(files={"utils.py": "def add(a, b):\n    return a + b\n"}),
)
UntestedMlModule.INVALID = (
    Example(files={"train.py": _SKLEARN_TRAIN, "app.py": _SERVE}),
    Example(
        files={
            "churn/__init__.py": "", "churn/train.py": _SKLEARN_TRAIN, "churn/features.py": _FEATURES,
            "tests/test_train.py": "from churn import train\n",
        }
    ),
    Example(files={"src/serve.py": _SERVE, "tests/test_utils.py": "from src import utils\n", "src/utils.py": ""}),
)


RULES = (
    NoExperimentTracking, ManualDeployment, NoFeatureStore, NoModelDocumentation, NotebookInProduction, UntestedMlModule,
)
