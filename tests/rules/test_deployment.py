"""The serving-app analysis behind AIML402, 403, 405 and 410, and the report fields it fills."""

from __future__ import annotations

import pytest

from pytest_aiml.engine.discovery import discover
from pytest_aiml.engine.inventory import build_inventory
from pytest_aiml.report.build import compute_section, monitoring_section, serving_section
from pytest_aiml.rules.deployment import (
    NoAbTesting,
    NoFallbackModel,
    NoLoadTesting,
    NoModelMonitoring,
    fallback_handlers,
    module_graph,
    scan_model_loads,
    serving_apps,
)

APP = (
    "import joblib\nfrom fastapi import FastAPI\n\napp = FastAPI()\nmodel = joblib.load('models/churn_v3.joblib')\n\n"
    "@app.post('/predict')\ndef predict(x: list[float]):\n    return {'y': model.predict([x]).tolist()}\n"
)
DECLARED = {"models": [], "latency_targets": [], "throughputs": []}


def _inventory(tmp_path, files: dict[str, str]):
    for relative, content in files.items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return build_inventory(discover(tmp_path))


def _codes(inventory, *rules) -> list[str]:
    return [finding.code for rule in rules for finding in rule().check(inventory)]


def test_relative_import_reaches_model(tmp_path):
    inventory = _inventory(
        tmp_path,
        {
            "svc/__init__.py": "",
            "svc/api/__init__.py": "",
            "svc/api/main.py": "from fastapi import FastAPI\nfrom ..core import loader\napp = FastAPI()\n",
            "svc/core/__init__.py": "",
            "svc/core/loader.py": "import onnxruntime as ort\nsession = ort.InferenceSession('m_v1.onnx')\n",
        },
    )
    (app,) = serving_apps(inventory)
    assert app.root == "svc/api/main.py"
    assert "svc/core/loader.py" in app.closure
    assert app.model_count == 1
    assert app.models[0].describe() == "onnxruntime.InferenceSession('m_v1.onnx') at svc/core/loader.py:2"


def test_nearest_module_wins_name_clash(tmp_path):
    inventory = _inventory(
        tmp_path,
        {
            "a/app.py": "from flask import Flask\nimport utils\n",
            "a/utils.py": "",
            "b/utils.py": "",
        },
    )
    assert module_graph(inventory).imports["a/app.py"] == frozenset({"a/utils.py"})


def test_imported_router_is_not_own_app(tmp_path):
    inventory = _inventory(
        tmp_path,
        {
            "main.py": "from fastapi import FastAPI\nfrom routes import router\napp = FastAPI()\n",
            "routes.py": APP.replace("app = FastAPI()", "router = FastAPI()"),
        },
    )
    assert [app.root for app in serving_apps(inventory)] == ["main.py"]


@pytest.mark.parametrize(
    "folder", ["docs/snippets/", "examples/", "tests/", "notebooks/"],
)
def test_example_folders_hold_no_apps(tmp_path, folder):
    assert serving_apps(_inventory(tmp_path, {f"{folder}app.py": APP})) == []


def test_framework_own_package_no_app(tmp_path):
    inventory = _inventory(
        tmp_path,
        {
            "src/flask/__init__.py": "",
            "src/flask/cli.py": "import flask\nimport joblib\nmodel = joblib.load('m.joblib')\n",
        },
    )
    assert serving_apps(inventory) == []


def test_sagemaker_handler_is_app(tmp_path):
    inventory = _inventory(
        tmp_path,
        {"code/inference.py": "import torch\n\ndef model_fn(model_dir):\n    return torch.jit.load(model_dir + '/model.pt')\n"},
    )
    (app,) = serving_apps(inventory)
    assert app.model_count == 1


def test_batch_run_mini_batch_not_app(tmp_path):
    inventory = _inventory(
        tmp_path, {"score_batch.py": "import joblib\nmodel = joblib.load('m.joblib')\n\ndef run(mini_batch):\n    return mini_batch\n"}
    )
    assert serving_apps(inventory) == []


def test_companion_loads_not_counted():
    loads = scan_model_loads(
        "app.py",
        "import joblib\nfrom transformers import AutoTokenizer, AutoModel\n"
        "scaler = joblib.load('scaler.joblib')\ntok = AutoTokenizer.from_pretrained('bert-base-uncased')\n"
        "model = AutoModel.from_pretrained('bert-base-uncased')\n",
    )
    assert [load.companion for load in loads] == [True, True, False]


def test_tuple_target_with_model_is_model():
    (load,) = scan_model_loads("app.py", "import pickle\nwith open('model.bin', 'rb') as f:\n    dv, model = pickle.load(f)\n")
    assert not load.companion
    assert load.source == "model.bin"


def test_aliased_loader_resolved():
    (load,) = scan_model_loads("app.py", "from joblib import load as restore\nclf = restore('clf.joblib')\n")
    assert load.call == "joblib.load"


def test_unrelated_load_ignored():
    assert scan_model_loads("app.py", "import json\nconfig = json.load(open('c.json'))\nyaml.safe_load(x)\n") == []


def test_version_parameter_makes_count_unknown(tmp_path):
    inventory = _inventory(
        tmp_path,
        {"app.py": "import joblib\nfrom flask import Flask\napp = Flask(__name__)\n\n"
                   "def get(model_version):\n    return joblib.load(f'models/{model_version}.joblib')\n"},
    )
    (app,) = serving_apps(inventory)
    assert app.model_count is None
    assert _codes(inventory, NoAbTesting, NoFallbackModel) == []


def test_state_dict_two_models_counted(tmp_path):
    inventory = _inventory(
        tmp_path,
        {"app.py": "import torch\nfrom fastapi import FastAPI\napp = FastAPI()\n"
                   "encoder.load_state_dict(torch.load('encoder.pt'))\ndecoder.load_state_dict(torch.load('decoder.pt'))\n"},
    )
    (app,) = serving_apps(inventory)
    assert app.model_count == 2


def test_fallback_handler_returns_default():
    source = (
        "def predict(x):\n    try:\n        return model.predict(x)\n    except Exception:\n        return DEFAULT\n"
    )
    assert fallback_handlers(source, {"model"}) == [4]


@pytest.mark.parametrize(
    "handler",
    [
        "        return {'error': str(e)}, 500\n",
        "        raise\n",
        "        return JSONResponse(status_code=500, content={'detail': 'failed'})\n",
        "        logger.exception('failed')\n",
        "        return None\n",
    ],
)
def test_error_handlers_not_fallback(handler):
    source = "def predict(x):\n    try:\n        return model.predict(x)\n    except Exception as e:\n" + handler
    assert fallback_handlers(source, {"model"}) == []


def test_handler_without_model_call_ignored():
    source = "def read(p):\n    try:\n        return open(p).read()\n    except OSError:\n        return ''\n"
    assert fallback_handlers(source, {"model"}) == []


def test_findings_name_app_and_load(tmp_path):
    inventory = _inventory(tmp_path, {"app.py": APP})
    messages = {finding.code: finding.message for rule in (NoModelMonitoring, NoAbTesting, NoFallbackModel, NoLoadTesting)
                for finding in rule().check(inventory)}
    assert sorted(messages) == ["AIML402", "AIML403", "AIML405", "AIML410"]
    for code in ("AIML402", "AIML403", "AIML405"):
        assert "joblib.load('models/churn_v3.joblib') at app.py:5" in messages[code]
    assert messages["AIML410"].startswith("online model serving in app.py and no load test")


def test_built_in_metrics_framework_silences_monitoring(tmp_path):
    inventory = _inventory(
        tmp_path,
        {"serve.py": "from ray import serve\nimport torch\n\n@serve.deployment\nclass M:\n"
                     "    def __init__(self):\n        self.net = torch.jit.load('net_v1.pt')\n"},
    )
    assert _codes(inventory, NoModelMonitoring) == []


def test_app_insights_config_counts_as_monitoring(tmp_path):
    inventory = _inventory(tmp_path, {"app.py": APP, "deploy/config_aks.yml": "computeType: AKS\nappInsightsEnabled: True\n"})
    assert _codes(inventory, NoModelMonitoring) == []


def test_ci_traffic_shift_counts_as_routing(tmp_path):
    workflow = "jobs:\n  release:\n    steps:\n      - run: gcloud run services update-traffic churn --to-revisions=LATEST=10\n"
    inventory = _inventory(tmp_path, {"app.py": APP, ".github/workflows/release.yml": workflow})
    assert _codes(inventory, NoAbTesting) == []


def test_load_test_folder_counts(tmp_path):
    inventory = _inventory(tmp_path, {"app.py": APP, "loadtests/predict.js": "export default function () {}\n"})
    assert _codes(inventory, NoLoadTesting) == []


def test_report_monitoring_from_evidence(tmp_path):
    inventory = _inventory(
        tmp_path, {"app.py": APP, "errors.py": "import sentry_sdk\n", "requirements.txt": "evidently==0.4.30\n"}
    )
    section = monitoring_section(inventory)
    assert section["model_performance"] is True
    assert section["data_drift"] is True
    assert section["x_evidence"] == ["evidently"]


def test_report_sentry_is_no_monitoring(tmp_path):
    section = monitoring_section(_inventory(tmp_path, {"app.py": APP, "errors.py": "import sentry_sdk\n"}))
    assert section["model_performance"] is False
    assert section["data_drift"] is False


def test_report_data_capture_logs_predictions(tmp_path):
    files = {
        "app.py": APP.replace("import joblib\n", "import joblib\nimport capture\n"),
        "capture.py": "from sagemaker.model_monitor import DataCaptureConfig\n",
    }
    assert monitoring_section(_inventory(tmp_path, files))["prediction_logging"] is True


def test_report_autoscaling_from_code(tmp_path):
    files = {"app.py": APP, "deploy.py": "serve.run(M.options(autoscaling_config={'min_replicas': 1, 'max_replicas': 4}))\n"}
    inventory = _inventory(tmp_path, files)
    assert serving_section(inventory, DECLARED)["autoscaling"] is True
    assert "autoscaling" in compute_section(inventory)["cost_optimization"]


def test_report_caching_in_closure(tmp_path):
    files = {
        "app.py": "from fastapi import FastAPI\nfrom model import get_model\napp = FastAPI()\n",
        "model.py": "import functools\nimport joblib\n\n@functools.lru_cache\ndef get_model():\n    return joblib.load('m_v1.joblib')\n",
    }
    assert serving_section(_inventory(tmp_path, files), DECLARED)["caching"] is True


def test_report_gpu_serving_without_batching(tmp_path):
    files = {"app.py": APP.replace("model = joblib", "device = 'cuda'\nmodel = joblib")}
    concerns = compute_section(_inventory(tmp_path, files))["utilization_concerns"]
    assert concerns == ["GPU serving without request batching (one request per forward pass)"]


def test_imported_state_restore_no_model(tmp_path):
    # A library's server check imports callbacks that restore optimizer state; that is no model load.
    inventory = _inventory(
        tmp_path,
        {
            "src/lib/serve/validator.py": "import uvicorn\nfrom fastapi import FastAPI\n\nfrom lib.callbacks import Finetune\n\napp = FastAPI()\n",
            "src/lib/callbacks.py": "class Finetune:\n    def restore(self, optimizer, state):\n        optimizer.load_state_dict(state)\n",
        },
    )
    assert serving_apps(inventory) == []
    assert _codes(inventory, NoModelMonitoring, NoLoadTesting) == []


def test_imported_file_load_is_model(tmp_path):
    inventory = _inventory(
        tmp_path,
        {
            "app/main.py": "from fastapi import FastAPI\n\nfrom app.model import net\n\napp = FastAPI()\n",
            "app/model.py": "import torch\n\nnet = Net()\nnet.load_state_dict(torch.load('weights/net_v2.pt', weights_only=True))\n",
        },
    )
    assert [app.root for app in serving_apps(inventory)] == ["app/main.py"]
