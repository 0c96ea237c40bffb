"""Serving rules on cases beyond their own examples: path building, data flow and scopes."""

from __future__ import annotations

import ast

import pytest

from pytest_aiml.engine import runner
from pytest_aiml.engine.ast_facts import AstFacts
from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.runner import analyze_text, applicable_rules
from pytest_aiml.rules.serving import HardcodedModelPath, InferenceWithoutNoGrad, NoInputValidation

FLASK = "from flask import Flask, request, jsonify\napp = Flask(__name__)\n"
FASTAPI = "from fastapi import Body, FastAPI, Request\nfrom typing import Annotated, Any\napp = FastAPI()\n"


def _messages(rule, source: str, path: str = "example.py") -> list[str]:
    analysis = analyze_text(path, source, applicable_rules(path, source, [rule]), RepoContext())
    assert analysis.failure is None, analysis.failure
    return [finding.message for finding in analysis.findings]


# -- AIML201 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "path"),
    [
        ("import joblib\nMODEL_DIR = '/opt/models'\nm = joblib.load(f'{MODEL_DIR}/m.joblib')\n", "/opt/models/m.joblib"),
        ("import torch\ndef f():\n    p = '/opt/m.pt'\n    return torch.load(p)\n", "/opt/m.pt"),
        ("import torch\nfrom pathlib import Path\nm = torch.load(str(Path('/opt') / 'x.pt'))\n", "/opt/x.pt"),
        ("import torch\nfrom pathlib import Path\nm = torch.load(Path('~/m.pt').expanduser())\n", "~/m.pt"),
        ("import os, torch\nm = torch.load(os.path.join('/srv', 'models', 'm.pt'))\n", "/srv/models/m.pt"),
        ("import mlflow\nm = mlflow.sklearn.load_model('/mnt/mlruns/1/model')\n", "/mnt/mlruns/1/model"),
        ("from transformers import pipeline\np = pipeline('ner', model='/models/ner')\n", "/models/ner"),
        ("import tensorflow as tf\ni = tf.lite.Interpreter(model_path='model.tflite')\n", "model.tflite"),
        ("from tensorflow import keras\nm = keras.models.load_model('~/m.keras')\n", "~/m.keras"),
        ("from llama_cpp import Llama\nllm = Llama(model_path='/models/q4.gguf')\n", "/models/q4.gguf"),
        ("import torch\nm = torch.load(open('weights.pth', 'rb'))\n", "weights.pth"),
    ],
)
def test_model_path_reported(source, path):
    messages = _messages(HardcodedModelPath, source)
    assert len(messages) == 1
    assert f"'{path}'" in messages[0]


@pytest.mark.parametrize(
    "source",
    [
        "import torch\nfrom pathlib import Path\nm = torch.load(Path(__file__).parent / 'm.pt')\n",
        "import os, joblib\nm = joblib.load(os.path.join(os.path.dirname(__file__), 'm.pkl'))\n",
        "import os, torch\nP = os.getenv('MODEL_PATH', '/opt/m.pt')\nm = torch.load(P)\n",
        "import torch\nP = '/opt/m.pt'\ndef load(P):\n    return torch.load(P)\n",
        "import mlflow\nm = mlflow.sklearn.load_model('s3://bucket/model')\n",
        "import mlflow\nm = mlflow.pyfunc.load_model('runs:/abc/model')\n",
        "from transformers import pipeline\np = pipeline('ner', model='dslim/bert-base-NER')\n",
        "import torch\nm = torch.load('/')\n",
        "import torch\nm = torch.load('https://example.org/m.pt')\n",
        "import torch\nm = torch.load(f'{root}/m.pt')\n",
        "import torch\nm = torch.load(buffer)\n",
        "import lightgbm as lgb\nb = lgb.Booster(model_file='lgb.txt')\n",
        # A load_model method without xgboost or catboost imported is someone else's API.
        "import fancy\nstore.load_model('m.pkl')\n",
    ],
)
def test_unknown_or_configured_path_silent(source):
    assert _messages(HardcodedModelPath, source) == []


def test_model_path_partial_prefix_message():
    messages = _messages(HardcodedModelPath, "import torch\nm = torch.load(f'/opt/models/{name}.pt')\n")
    assert messages == ["torch.load() loads a path that starts with the hardcoded '/opt/models/'"]


def test_model_path_skips_test_modules():
    assert _messages(HardcodedModelPath, "import torch\nm = torch.load('/opt/m.pt')\n", path="tests/test_m.py") == []


def test_model_path_rebound_constant_silent():
    source = "import torch\nfrom pathlib import Path\nD = Path('/opt')\nD = Path(os.environ['D'])\nm = torch.load(D / 'm.pt')\n"
    assert _messages(HardcodedModelPath, source) == []


# -- AIML202 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handler",
    [
        # A comprehension of float() conversions is not followed: float() rejects non-numbers.
        "data = request.json\n    x = [float(v) for v in data['x']]\n    return jsonify(model.predict([x]).tolist())",
        "data = request.get_json(silent=True)\n    if data is None:\n        return jsonify(error='no json'), 400\n"
        "    return jsonify(model.predict(data['x']).tolist())",
        "data = request.json\n    validate_input(data)\n    return jsonify(model.predict(data['x']).tolist())",
        "item = Item(**request.json)\n    return jsonify(model.predict([item.x]).tolist())",
        "data = InputSchema().load(request.json)\n    return jsonify(model.predict(data).tolist())",
        "return jsonify({'text': request.json['text'].encode('utf-8').hex()})",
    ],
)
def test_flask_validated_or_unused_data_silent(handler):
    source = FLASK + "@app.post('/p')\ndef p():\n    " + handler + "\n"
    assert _messages(NoInputValidation, source) == []


def test_flask_loop_over_request_rows_reported():
    source = FLASK + (
        "@app.post('/p')\ndef p():\n    out = []\n    for row in request.json['rows']:\n"
        "        out.append(model.predict([row]))\n    return jsonify(out)\n"
    )
    assert _messages(NoInputValidation, source) == [
        "model.predict() receives request.json unvalidated in the route handler p()"
    ]


def test_request_outside_route_handler_silent():
    source = FLASK + "@app.post('/p')\ndef p():\n    return 'ok'\n\ndef q():\n    return model.predict(request.json)\n"
    assert _messages(NoInputValidation, source) == []


def test_nested_function_in_handler_reported():
    source = FLASK + (
        "@app.post('/p')\ndef p():\n    def run():\n        return model.predict(request.json)\n    return run()\n"
    )
    assert len(_messages(NoInputValidation, source)) == 1


@pytest.mark.parametrize(
    ("signature", "call", "expected"),
    [
        ("body: Annotated[dict, Body()]", "model.predict(body['x'])", "the parameter 'body: Annotated[dict, Body()]'"),
        ("body: Any = Body(...)", "clf.predict_proba(body)", "the parameter 'body: Any'"),
        ("request: Request", "model.predict(await request.json())", "await request.json()"),
        ("payload: dict", "predict_one(payload)", "the parameter 'payload: dict'"),
    ],
)
def test_fastapi_unvalidated_parameters_reported(signature, call, expected):
    source = FASTAPI + f"@app.post('/p')\nasync def p({signature}):\n    return {call}\n"
    messages = _messages(NoInputValidation, source)
    assert len(messages) == 1
    assert expected in messages[0]


@pytest.mark.parametrize(
    ("rule", "signature", "call"),
    [
        ("/p", "text: str", "model.encode(text)"),
        ("/p", "features: list[float]", "model.predict([features])"),
        ("/p", "request: Request", "model.predict(request.query_params)"),
        ("/items/{item_id}", "item_id", "model.predict(item_id)"),
        ("/p", "task", "pipeline(task)"),
    ],
)
def test_fastapi_typed_or_path_parameters_silent(rule, signature, call):
    source = FASTAPI + "from transformers import pipeline\n" + f"@app.post('{rule}')\ndef p({signature}):\n    return {call}\n"
    assert _messages(NoInputValidation, source) == []


def test_input_validation_skips_test_modules():
    source = FLASK + "@app.post('/p')\ndef p():\n    return model.predict(request.json)\n"
    assert _messages(NoInputValidation, source, path="tests/test_api.py") == []


# -- AIML203 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "path"),
    [
        ("import torch\n@torch.no_grad\ndef predict(x):\n    return model(x)\n", "example.py"),
        ("import torch\ndef predict(x):\n    with torch.set_grad_enabled(False):\n        return model(x)\n", "example.py"),
        # An unknown mode is not assumed to enable gradients.
        ("import torch\ndef predict(x, train):\n    with torch.set_grad_enabled(train):\n        return model(x)\n", "example.py"),
        ("def predict(x):\n    return model(x)\n", "serve.py"),
        ("import torch, joblib\nmodel = joblib.load('m.joblib')\ndef predict(x):\n    return model(x)\n", "example.py"),
        ("import torch\nclass M:\n    def predict_step(self, batch):\n        return self.model(batch)\n", "example.py"),
        ("import torch\ndef predict(x):\n    return tokenizer(x)\n", "example.py"),
        ("import torch\ndef run(x):\n    return model(x)\n", "apply_patch.py"),
        ("import torch\nmodel = torch.jit.load('m')\nout = model(x)\n", "serve.py"),
        ("import torch\ndef step(x):\n    out = model(x)\n    out.sum().backward()\n", "server.py"),
        ("import torch\ndef predict(x):\n    loss = model(x)\n    scaler.step(optimizer)\n", "example.py"),
        ("import torch\ndef predict(x):\n    return model.generate(x)\n", "example.py"),
        (
            "import torch\nfrom ultralytics import YOLO\nclass S:\n    def __init__(self):\n"
            "        self.model = YOLO('y.pt')\n    def predict(self, image):\n        return self.model(image)\n",
            "example.py",
        ),
        ("import torch\ndef predict(x):\n    return model(x)\n", "tests/test_serve.py"),
    ],
)
def test_no_grad_silent(source, path):
    assert _messages(InferenceWithoutNoGrad, source, path=path) == []


@pytest.mark.parametrize(
    ("source", "path", "expected"),
    [
        ("import torch\ndef _run(x):\n    return net(x)\n", "serving/core.py", "net() runs a torch model in _run()"),
        ("import torch\nclass H:\n    def handle(self, data, ctx):\n        return self.net(data)\n", "h.py", "self.net()"),
        (
            "import torch\nfrom flask import Flask\napp = Flask(__name__)\n@app.route('/x')\ndef x():\n    return net(t)\n",
            "example.py",
            "net() runs a torch model in x()",
        ),
        (
            "import torch\ndef predict(x):\n    with torch.inference_mode(mode=False):\n        return model(x)\n",
            "example.py",
            "model()",
        ),
    ],
)
def test_no_grad_reported(source, path, expected):
    messages = _messages(InferenceWithoutNoGrad, source, path=path)
    assert len(messages) == 1
    assert expected in messages[0]


def test_class_handler_ray_dataset_reported():
    source = (
        "import ray\nfrom fastapi import FastAPI\nfrom starlette.requests import Request\nfrom pkg import predict\n"
        "app = FastAPI()\n\nclass Deployment:\n    @app.post('/predict/')\n    async def _predict(self, request: Request):\n"
        "        data = await request.json()\n        ds = ray.data.from_items([{'title': data.get('title', '')}])\n"
        "        return predict.predict_proba(ds=ds, predictor=self.predictor)\n"
    )
    assert _messages(NoInputValidation, source) == [
        "predict.predict_proba() receives await request.json() unvalidated in the route handler _predict()"
    ]


@pytest.mark.parametrize(
    "path",
    [
        "serve.py",
        "server.py",
        "app/main.py",
        "api/routes.py",
        "inference/run.py",
        "predictor.py",
        "handler.py",
        "serve_bert.py",
        "serving_utils/batch.py",
        "predict_api/main.py",
        "inference_utils.py",
        "infer_batch.py",
        "src/Serving/core.py",
    ],
)
def test_serving_path_reported(path):
    source = "import torch\ndef run(x):\n    return model(x)\n"
    assert len(_messages(InferenceWithoutNoGrad, source, path=path)) == 1


@pytest.mark.parametrize(
    "path",
    [
        "distributed/rpc/parameter_server/rpc_parameter_server.py",
        "parameter_server/worker.py",
        "model_server.py",
        "webapp/main.py",
        "application.py",
        "apply_patch.py",
        "prediction_plots.py",
    ],
)
def test_non_serving_path_silent(path):
    source = "import torch\ndef run(x):\n    return model(x)\n"
    assert _messages(InferenceWithoutNoGrad, source, path=path) == []


@pytest.mark.parametrize(
    "source",
    [
        # A LightningModule's own methods, under any name.
        "import torch\nimport pytorch_lightning as pl\nclass Lit(pl.LightningModule):\n"
        "    def predict(self, x):\n        return self.model(x)\n",
        # A subclass of a torch module defined in the same file is a torch module too.
        "import torch\nfrom torch.nn import Module\nclass Base(Module):\n    pass\nclass Head(Base):\n"
        "    def forward(self, x):\n        return self.net(x)\n",
        # A function nested in a module's method belongs to the model as well.
        "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n"
        "        def step(y):\n            return self.encoder(y)\n        return step(x)\n",
        # A class defined after its use still builds an object.
        "import torch\ndef predict(cfg):\n    return Net(cfg)\nclass Net:\n    pass\n",
        "import torch\nfrom models import Net\ndef predict(cfg):\n    return Net(cfg)\n",
    ],
)
def test_model_internals_and_construction_silent(source):
    assert _messages(InferenceWithoutNoGrad, source, path="serve.py") == []


def test_plain_class_method_in_serving_still_reported():
    source = (
        "import torch\nfrom torch import nn\nclass Net(nn.Module):\n    pass\n"
        "class Service:\n    def __init__(self):\n        self.model = Net()\n"
        "    def run(self, x):\n        return self.model(x)\n"
    )
    assert _messages(InferenceWithoutNoGrad, source, path="serve.py") == [
        "self.model() runs a torch model in run() without torch.no_grad() or torch.inference_mode()"
    ]


# -- AIML201: data files ----------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        "torch.load('traindata.pt')",
        "torch.load('data/test.pt')",
        "torch.load('processed/training.pt')",
        "torch.load('val_samples.pt')",
        "joblib.load('X_train.joblib')",
        "joblib.load('y_test.pkl')",
        "pd.read_pickle('dataset.pkl')",
        "pickle.load(open('labels.pkl', 'rb'))",
        "load_file('features.safetensors')",
    ],
)
def test_relative_data_file_silent(call):
    source = (
        "import pickle, joblib, torch\nimport pandas as pd\nfrom safetensors.torch import load_file\n"
        f"value = {call}\n"
    )
    assert _messages(HardcodedModelPath, source) == []


@pytest.mark.parametrize(
    ("call", "path"),
    [
        # Absolute and home paths are hardcoded whatever the file holds.
        ("torch.load('/data/traindata.pt')", "/data/traindata.pt"),
        ("joblib.load('~/cache/X_train.joblib')", "~/cache/X_train.joblib"),
        # An embedding table is often part of a model.
        ("torch.load('embeddings.pt')", "embeddings.pt"),
        ("joblib.load('label_encoder.pkl')", "label_encoder.pkl"),
        ("torch.load('feature_extractor.pt')", "feature_extractor.pt"),
        ("torch.load('best_val.pt')", "best_val.pt"),
        ("torch.load('trained_model.pt')", "trained_model.pt"),
        ("torch.load('val_loss_0.23.ckpt')", "val_loss_0.23.ckpt"),
        # A loader that reads only models is not told otherwise by the name.
        ("torch.jit.load('test.pt')", "test.pt"),
    ],
)
def test_model_or_absolute_file_reported(call, path):
    source = f"import joblib, torch\nvalue = {call}\n"
    messages = _messages(HardcodedModelPath, source)
    assert messages == [f"{call.split('(')[0]}() loads a hardcoded path '{path}'"]


# -- AIML202: helpers between the request and the model --------------------------------


def test_module_helper_carries_request_data():
    source = FLASK + (
        "@app.post('/p')\ndef p():\n    ride = request.get_json()\n    features = prepare(ride)\n"
        "    return jsonify(model.predict([features]).tolist())\n\n"
        "def prepare(ride):\n    return [ride['distance'], ride['duration']]\n"
    )
    assert _messages(NoInputValidation, source) == [
        "model.predict() receives request.get_json() through prepare() unvalidated in the route handler p()"
    ]


@pytest.mark.parametrize(
    "helper",
    [
        "from features import build_features\n",
        "import features\nbuild_features = features.build_features\n",
        "from pipeline_utils import make_inputs as build_features\n",
    ],
)
def test_named_helper_carries_request_data(helper):
    source = FLASK + helper + (
        "@app.post('/p')\ndef p():\n    x = build_features(request.json)\n    return jsonify(model.predict(x).tolist())\n"
    )
    assert len(_messages(NoInputValidation, source)) == 1


def test_helper_on_imported_module_carries_request_data():
    source = FLASK + "import featurize\n" + (
        "@app.post('/p')\ndef p():\n    x = featurize.extract(request.json)\n    return jsonify(model.predict(x).tolist())\n"
    )
    assert _messages(NoInputValidation, source) == [
        "model.predict() receives request.json through featurize.extract() unvalidated in the route handler p()"
    ]


@pytest.mark.parametrize(
    "helper_body",
    [
        "    if 'distance' not in ride:\n        raise ValueError('distance is required')\n    return [ride['distance']]",
        "    item = Ride(**ride)\n    return [item.distance]",
        "    validate(ride, SCHEMA)\n    return [ride['distance']]",
        "    data = ride.get('payload')\n    if data is None:\n        return None\n    return [data['distance']]",
    ],
)
def test_validating_helper_silent(helper_body):
    source = FLASK + (
        f"def prepare(ride):\n{helper_body}\n\n"
        "@app.post('/p')\ndef p():\n    return jsonify(model.predict([prepare(request.json)]).tolist())\n"
    )
    assert _messages(NoInputValidation, source) == []


@pytest.mark.parametrize(
    "call",
    [
        # An unknown function's result is not assumed to carry the data.
        "lookup_user(request.json['id'])",
        "store.fetch(request.json['id'])",
        # A method of an object is not a helper function.
        "cache.build_features(request.json)",
        "len(request.json)",
        "check_payload(request.json)",
    ],
)
def test_unknown_calls_end_flow(call):
    source = FLASK + f"@app.post('/p')\ndef p():\n    x = {call}\n    return jsonify(model.predict([x]).tolist())\n"
    assert _messages(NoInputValidation, source) == []


def test_model_call_result_not_reported_again():
    source = FLASK + (
        "@app.post('/p')\ndef p():\n    x = preprocess(request.json)\n    y = scaler.transform(x)\n"
        "    return jsonify(model.predict(y).tolist())\n"
    )
    assert _messages(NoInputValidation, source) == [
        "preprocess() receives request.json unvalidated in the route handler p()"
    ]


# -- AIML203 ast candidate check ----------------------------------------------------------


def _no_grad_kept(source: str) -> bool:
    return InferenceWithoutNoGrad.candidate(AstFacts(ast.parse(source)))


@pytest.mark.parametrize(
    ("source", "path"),
    [
        # A conditional context, and inference mode turned off, may leave autograd on.
        ("import torch\n\ndef predict(x):\n    with torch.no_grad() if fast else nullcontext():\n        return model(x)\n",
         "serve.py"),
        ("import torch\n\n@torch.inference_mode(False)\ndef predict(x):\n    return model(x)\n", "serve.py"),
        # A base class from the project is not known to be a torch module.
        ("import torch\nfrom .base import Base\n\nclass Net(Base):\n    def run(self, x):\n        return self.model(x)\n",
         "serving/net.py"),
        # A function nested in a Lightning hook is not the hook.
        ("import torch\n\nclass Lit:\n    def predict_step(self, batch):\n        def run():\n            return model(batch)\n"
         "        return run()\n", "serving/lit.py"),
        # Training in a nested function does not make the outer one training code.
        ("import torch\n\ndef handle(x):\n    def tune():\n        loss.backward()\n    m = torch.jit.load('m.pt')\n"
         "    return m(x)\n", "serve.py"),
    ],
)
def test_no_grad_candidate_keeps_reported_file(source, path):
    assert _no_grad_kept(source)
    assert _messages(InferenceWithoutNoGrad, source, path)


@pytest.mark.parametrize(
    "source",
    [
        "import torch\n\ndef predict(x):\n    with torch.inference_mode():\n        return model(x)\n",
        "import torch\n\n@torch.no_grad()\ndef predict(x):\n    return model.forward(x)\n",
        "import lightning as L\nimport torch\n\nclass Lit(L.LightningModule):\n    def predict(self, x):\n"
        "        return self.model(x)\n",
        "import torch\n\ndef predict(model, x, optimizer):\n    loss = model(x).sum()\n    loss.backward()\n",
        # Calling an imported name or a class builds an object.
        "import torch\nfrom .nets import model\n\nclass Net(torch.nn.Module):\n    pass\n\ndef serve():\n"
        "    return model(Net())\n",
        "import torch\n\nmodel = torch.jit.load('m.pt')\nprint(model(example))\n",
    ],
)
def test_no_grad_candidate_rules_out_clean_file(monkeypatch, source):
    assert not _no_grad_kept(source)
    assert applicable_rules("serving/app.py", source, [InferenceWithoutNoGrad]), "the text pre-filter already rules it out"
    monkeypatch.setattr(runner, "_candidates", lambda rules, source: rules)
    assert _messages(InferenceWithoutNoGrad, source, "serving/app.py") == []
