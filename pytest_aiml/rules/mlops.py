"""MLOps rules: repository-wide practice around training."""

from __future__ import annotations

from collections.abc import Iterator

from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.inventory import Inventory
from pytest_aiml.engine.rule import Category, Effort, Example, Priority, RepoRule

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

RULES = (NoExperimentTracking,)
