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
