"""Input-validation probes on serving functions, ONNX sessions and HTTP endpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_aiml.serving.loading import load_onnx_session
from pytest_aiml.serving.probes import (
    PROBE_NAMES,
    build_probes,
    probe_asgi_app,
    probe_callable,
    probe_http,
    probe_onnx_session,
    run_probes,
)
from pytest_aiml.serving.spec import InputSpec

torch = pytest.importorskip("torch")

FEATURES = (InputSpec("features", "float32", ("batch", 8)),)


def make_unvalidated(model):
    def predict(features):
        with torch.no_grad():
            return model(torch.as_tensor(np.asarray(features, dtype=np.float32))).numpy()

    return predict


def make_validated(model):
    def predict(features):
        if not isinstance(features, np.ndarray) or features.dtype != np.float32:
            raise TypeError(f"features must be a float32 array, got {getattr(features, 'dtype', type(features))}")
        if features.ndim != 2 or features.shape[1] != 8:
            raise ValueError(f"features must have shape [batch, 8], got {list(features.shape)}")
        if features.shape[0] == 0:
            raise ValueError("features is an empty batch")
        if not np.isfinite(features).all():
            raise ValueError("features contains NaN or infinity")
        with torch.no_grad():
            return model(torch.from_numpy(features)).numpy()

    return predict


def statuses(report):
    return {outcome.name: outcome.status for outcome in report.outcomes}


def test_probe_set_is_complete():
    probes = build_probes(FEATURES)

    assert [probe.name for probe in probes] == ["valid_input", *PROBE_NAMES]
    by_name = {probe.name: probe for probe in probes}
    assert by_name["wrong_rank"].changed_array().shape == (8,)
    assert by_name["wrong_fixed_dimension"].changed_array().shape == (3, 9)
    assert by_name["empty_batch"].changed_array().shape == (0, 8)
    assert np.isnan(by_name["nan"].changed_array()).sum() == 1
    assert np.isposinf(by_name["positive_infinity"].changed_array()).sum() == 1
    assert by_name["wrong_dtype"].changed_array().dtype.kind == "U"


def test_function_without_validation_fails(exported):
    report = probe_callable(make_unvalidated(exported["mlp"].model), FEATURES, target="serve:predict")

    assert not report.passed
    result = statuses(report)
    assert result["valid_input"] == "passed"
    assert result["nan"] == "failed"
    assert result["positive_infinity"] == "failed"
    assert result["empty_batch"] == "failed"
    assert result["wrong_rank"] == "failed"
    # np.asarray(..., dtype=float32) parses numeric strings, so they pass too.
    assert result["wrong_dtype"] == "failed"
    # The model itself raises on a wrong width, which counts as a rejection.
    assert result["wrong_fixed_dimension"] == "passed"
    text = report.failure_text()
    assert "serve:predict did not reject 5 malformed input(s)" in text
    assert "nan: features with one NaN element -> returned a prediction of type ndarray" in text


def test_function_with_validation_passes(exported):
    report = probe_callable(make_validated(exported["mlp"].model), FEATURES, target="serve:predict")

    assert report.passed, report.failure_text()
    assert set(statuses(report).values()) == {"passed"}
    assert report.failure_text() == ""
    nan_outcome = next(o for o in report.outcomes if o.name == "nan")
    assert nan_outcome.outcome == "raised ValueError: features contains NaN or infinity"


def test_function_rejecting_everything_fails_control():
    def reject(features):
        raise RuntimeError("service unavailable")

    report = probe_callable(reject, FEATURES)

    assert not report.passed
    assert report.failed_probes == ("valid_input",)
    assert "valid input was rejected" in report.failure_text()


def test_onnx_session_rejects_shape_errors_but_not_nan(exported):
    session = load_onnx_session(exported["mlp"].onnx_path)

    report = probe_onnx_session(session)

    result = statuses(report)
    assert result["wrong_dtype"] == "passed"
    assert result["wrong_rank"] == "passed"
    assert result["wrong_fixed_dimension"] == "passed"
    assert result["nan"] == "failed"
    assert result["positive_infinity"] == "failed"
    assert "onnxruntime returned outputs" in report.failure_text()


def test_run_probes_dispatches_on_target(exported):
    session = load_onnx_session(exported["mlp"].onnx_path)

    assert run_probes(session, FEATURES, name="onnx").target == "onnx"
    assert run_probes(make_validated(exported["mlp"].model), FEATURES).passed


def test_integer_inputs_skip_float_probes():
    ids = (InputSpec("ids", "int64", ("batch", "sequence")),)

    report = probe_callable(lambda ids: ids.sum(), ids)

    result = statuses(report)
    assert result["nan"] == "not_applicable"
    assert result["positive_infinity"] == "not_applicable"
    assert result["wrong_fixed_dimension"] == "not_applicable"
    not_applicable = next(o for o in report.outcomes if o.name == "nan")
    assert not_applicable.outcome == "no input has a floating-point dtype"


def test_multiple_inputs_are_passed_positionally():
    inputs = (InputSpec("a", "float32", ("batch", 2)), InputSpec("b", "int64", ("batch",)))
    seen = []

    def predict(a, b):
        seen.append((a.shape, b.shape))
        raise ValueError("rejected")

    probe_callable(predict, inputs)

    assert seen[0] == ((3, 2), (3,))


def test_http_status_codes_decide():
    bodies = []

    def post(body: bytes):
        payload = json.loads(body)
        bodies.append(payload)
        features = np.asarray(payload["features"], dtype=object)
        if features.ndim != 2 or features.shape[0] == 0:
            return 422, '{"detail": "bad shape"}'
        if not np.isfinite(np.asarray(payload["features"], dtype=float)).all():
            return 500, "Internal Server Error"
        return 200, '{"logits": []}'

    report = probe_http(post, FEATURES, target="POST /predict")

    result = statuses(report)
    assert result["valid_input"] == "passed"
    assert result["wrong_rank"] == "passed"
    assert result["empty_batch"] == "passed"
    assert result["nan"] == "failed"
    assert result["wrong_fixed_dimension"] == "failed"
    nan_outcome = next(o for o in report.outcomes if o.name == "nan")
    assert nan_outcome.outcome.startswith("HTTP 500 (a server error, not a 4xx rejection)")
    assert any(np.isnan(np.asarray(body["features"], dtype=float)).any() for body in bodies)


def test_to_dict_lists_every_probe(exported):
    report = probe_callable(make_unvalidated(exported["mlp"].model), FEATURES, target="t")

    data = report.to_dict()

    assert data["target"] == "t"
    assert data["passed"] is False
    assert data["skipped"] is None
    assert [probe["name"] for probe in data["probes"]] == ["valid_input", *PROBE_NAMES]
    nan_probe = data["probes"][PROBE_NAMES.index("nan") + 1]
    assert nan_probe == {
        "name": "nan",
        "status": "failed",
        "description": "features with one NaN element",
        "input": "features",
        "shape": [3, 8],
        "dtype": "float32",
        "outcome": "returned a prediction of type ndarray",
    }
    json.dumps(data)


def _fastapi_missing() -> bool:
    try:
        import fastapi  # noqa: F401
        import httpx  # noqa: F401
    except ImportError:
        return True
    return False


@pytest.mark.skipif(not _fastapi_missing(), reason="fastapi and httpx are installed")
def test_asgi_probe_skips_without_httpx():
    report = probe_asgi_app(object(), FEATURES, target="serve:app")

    assert report.skipped is not None
    assert "is not installed" in report.skipped
    assert not report.passed


@pytest.mark.skipif(_fastapi_missing(), reason="needs fastapi and httpx")
def test_fastapi_app_through_test_client(exported):
    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel, ConfigDict

    predict = make_validated(exported["mlp"].model)
    app = FastAPI()

    class Request(BaseModel):
        # Strict, so that numbers sent as strings are rejected instead of converted.
        model_config = ConfigDict(strict=True)
        features: list[list[float]]

    def serve(request: Request):
        try:
            array = np.asarray(request.features, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        try:
            return {"logits": predict(array).tolist()}
        except (TypeError, ValueError) as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc

    # This module postpones annotations, and FastAPI cannot resolve the string
    # "Request" to a class defined inside this test, so the real class is set here.
    serve.__annotations__ = {"request": Request}
    app.post("/predict")(serve)

    report = run_probes(app, FEATURES, name="serve:app")

    assert report.passed, report.failure_text()
    assert report.target == "serve:app POST /predict"
