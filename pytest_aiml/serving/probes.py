"""Input-validation probes for a serving entry point or an ONNX session.

A serving entry point must reject malformed input before it returns a prediction.
:func:`build_probes` derives six malformed inputs from the model's inputs, each
changing one input of an otherwise valid batch:

================================ ===============================================
probe name                       what is sent
================================ ===============================================
``wrong_dtype``                  float input as strings; integer input as floats
                                 with a fraction; bool input as floats
``wrong_rank``                   the leading axis dropped (a single sample sent
                                 without its batch axis); a rank-1 input gets an
                                 extra axis instead
``wrong_fixed_dimension``        the first fixed dimension increased by one
``empty_batch``                  the leading axis of size 0
``nan``                          one element NaN (first float input)
``positive_infinity``            one element +inf (first float input)
================================ ===============================================

A probe passes when the target raises an exception (or, over HTTP, responds with
a 4xx status) and fails when it returns a result. A probe that does not apply (no
fixed dimension, no float input) is reported as ``not_applicable``. Before the
probes, a valid batch is sent as a control: a target that rejects valid input fails
that control, because rejecting everything would otherwise pass every probe.

Targets:

- :func:`probe_callable`: a Python function called with the arrays positionally, in
  input order (a single-input model gets one array);
- :func:`probe_onnx_session`: an onnxruntime session, used when a model declares
  no serving entry point (onnxruntime rejects dtype, rank and dimension errors but
  accepts NaN and inf, so those two fail);
- :func:`probe_http`: any JSON-over-HTTP endpoint reached through a ``post``
  function, and :func:`probe_asgi_app` for a FastAPI/Starlette app through its
  ``TestClient`` (skipped with a reason when ``httpx`` or ``starlette`` is missing).
  The JSON body maps input names to nested lists; NaN and inf are written as the
  ``NaN``/``Infinity`` literals that Python's ``json`` module reads.

``ProbeReport.to_dict()``::

    {"target": "churn.serve:predict", "passed": False, "skipped": None,
     "probes": [{"name": "nan", "status": "failed", "description": "...",
                 "input": "features", "shape": [3, 8], "dtype": "float32",
                 "outcome": "returned a prediction of type ndarray"}, ...]}

``status`` is one of ``passed``, ``failed`` and ``not_applicable``; the control
appears first under the name ``valid_input``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_aiml.serving.inputs import InputGroup, make_batch
from pytest_aiml.serving.spec import InputSpec

__all__ = [
    "PROBE_NAMES",
    "Probe",
    "ProbeOutcome",
    "ProbeReport",
    "build_probes",
    "is_asgi_app",
    "probe_asgi_app",
    "probe_callable",
    "probe_http",
    "probe_onnx_session",
    "run_probes",
]

logger = logging.getLogger("pytest_aiml.serving")

PROBE_NAMES = (
    "wrong_dtype",
    "wrong_rank",
    "wrong_fixed_dimension",
    "empty_batch",
    "nan",
    "positive_infinity",
)
CONTROL_NAME = "valid_input"
PASSED = "passed"
FAILED = "failed"
NOT_APPLICABLE = "not_applicable"

# The control batch has a batch size above 1, so that dropping the leading axis
# is a real change of rank and shape.
CONTROL_BATCH = 3


@dataclass(frozen=True, slots=True, eq=False)
class Probe:
    """One malformed (or, for the control, valid) input batch.

    ``arrays`` is ``None`` for a probe that does not apply to these inputs, and
    ``reason`` then explains why. ``changed_input`` names the input that was altered.
    """

    name: str
    description: str
    arrays: tuple[tuple[str, np.ndarray], ...] | None
    changed_input: str | None = None
    reason: str = ""

    @property
    def applicable(self) -> bool:
        """Whether the probe has input to send."""
        return self.arrays is not None

    def changed_array(self) -> np.ndarray | None:
        """Return the altered array, or ``None`` for a probe that does not apply."""
        if self.arrays is None:
            return None
        return dict(self.arrays).get(self.changed_input) if self.changed_input else None


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """The target's response to one probe.

    ``status`` is ``"passed"``, ``"failed"`` or ``"not_applicable"``.
    ``outcome`` describes the rejection (exception type and message, HTTP status)
    or the returned prediction.
    """

    name: str
    status: str
    description: str
    outcome: str
    changed_input: str | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the outcome as builtins."""
        return {
            "name": self.name,
            "status": self.status,
            "description": self.description,
            "input": self.changed_input,
            "shape": None if self.shape is None else list(self.shape),
            "dtype": self.dtype,
            "outcome": self.outcome,
        }


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """The outcome of every probe on one target, or why the probes were skipped."""

    target: str
    outcomes: tuple[ProbeOutcome, ...]
    skipped: str | None = None

    @property
    def passed(self) -> bool:
        """Whether no probe (and not the control) failed; ``False`` when skipped."""
        return self.skipped is None and all(o.status != FAILED for o in self.outcomes)

    @property
    def failed_probes(self) -> tuple[str, ...]:
        """Names of the failed probes."""
        return tuple(o.name for o in self.outcomes if o.status == FAILED)

    def failure_text(self) -> str:
        """Return a multi-line description of the failed probes, empty when none failed."""
        if self.skipped is not None:
            return f"input validation of {self.target} skipped: {self.skipped}"
        failed = [o for o in self.outcomes if o.status == FAILED]
        if not failed:
            return ""
        lines = [f"{self.target} did not reject {len(failed)} malformed input(s):"]
        for outcome in failed:
            if outcome.name == CONTROL_NAME:
                lines.append(f"  {outcome.name}: valid input was rejected ({outcome.outcome}); "
                             "the probes cannot tell validation from a broken entry point")
                continue
            lines.append(f"  {outcome.name}: {outcome.description} -> {outcome.outcome}")
        lines.append("  validate dtype, shape and finiteness of every input and raise "
                     "(or answer 4xx) before calling the model")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as builtins (see the module docstring for the layout)."""
        return {
            "target": self.target,
            "passed": self.passed,
            "skipped": self.skipped,
            "probes": [outcome.to_dict() for outcome in self.outcomes],
        }


def build_probes(inputs: Sequence[InputSpec], *, seed: int = 0) -> tuple[Probe, ...]:
    """Build the control batch and the six probes of :data:`PROBE_NAMES` for ``inputs``."""
    if not inputs:
        raise ValueError("cannot build input probes for a model without inputs")
    valid = make_batch(inputs, CONTROL_BATCH, seed=seed, label=CONTROL_NAME)
    return (
        Probe(CONTROL_NAME, f"a valid batch ({_shapes_text(valid)})", valid.arrays),
        _wrong_dtype(inputs, valid),
        _wrong_rank(inputs, valid),
        _wrong_fixed_dimension(inputs, valid),
        _empty_batch(inputs, valid),
        _non_finite(inputs, valid, "nan", float("nan")),
        _non_finite(inputs, valid, "positive_infinity", float("inf")),
    )


def probe_callable(function: Callable[..., Any], inputs: Sequence[InputSpec], *,
                   target: str = "", seed: int = 0) -> ProbeReport:
    """Call ``function`` with every probe; an exception counts as a rejection."""
    def send(probe: Probe) -> tuple[bool, str]:
        arrays = [array for _, array in probe.arrays or ()]
        try:
            result = function(*arrays)
        except Exception as exc:  # any exception is a rejection: that is the contract probed
            return True, _exception_text(exc)
        return False, f"returned a prediction of type {type(result).__name__}"

    return _run(build_probes(inputs, seed=seed), send, target or _callable_name(function))


def probe_onnx_session(session: Any, inputs: Sequence[InputSpec] | None = None, *,
                       target: str = "ONNX model", seed: int = 0) -> ProbeReport:
    """Run every probe through an onnxruntime session; inputs default to its signature."""
    from pytest_aiml.serving.inputs import signature_from_session

    specs = tuple(inputs) if inputs else signature_from_session(session)

    def send(probe: Probe) -> tuple[bool, str]:
        try:
            session.run(None, dict(probe.arrays or ()))
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            return True, _exception_text(exc)
        return False, "onnxruntime returned outputs"

    return _run(build_probes(specs, seed=seed), send, target)


def probe_http(post: Callable[[bytes], tuple[int, str]], inputs: Sequence[InputSpec], *,
               target: str, seed: int = 0) -> ProbeReport:
    """Send every probe as a JSON body through ``post`` and judge the status code.

    ``post`` takes the request body and returns ``(status code, response text)``.
    A 4xx status is a rejection. A 2xx status is a returned prediction, and a 5xx
    status means the server crashed on the input instead of rejecting it, so both
    fail the probe.
    """
    def send(probe: Probe) -> tuple[bool, str]:
        body = _json_body(probe.arrays or ())
        status, text = post(body)
        snippet = " ".join(text.split())[:200]
        if 400 <= status < 500:
            return True, f"HTTP {status}: {snippet}"
        if status >= 500:
            return False, f"HTTP {status} (a server error, not a 4xx rejection): {snippet}"
        return False, f"HTTP {status}: returned a prediction"

    return _run(build_probes(inputs, seed=seed), send, target)


def is_asgi_app(candidate: Any) -> bool:
    """Check whether ``candidate`` is a Starlette or FastAPI application, by its class's module."""
    module = type(candidate).__module__ or ""
    return module.split(".")[0] in ("fastapi", "starlette") and callable(candidate)


def probe_asgi_app(app: Any, inputs: Sequence[InputSpec], *, target: str,
                   path: str | None = None, seed: int = 0) -> ProbeReport:
    """Probe a FastAPI/Starlette app through ``starlette.testclient.TestClient``.

    ``path`` defaults to the app's only POST route, or ``/predict`` when there
    are several. Returns a skipped report when ``starlette`` or ``httpx`` (which
    the test client needs) is not installed. The test client calls the app in
    process, without opening a socket.
    """
    try:
        import httpx  # noqa: F401  (the test client needs it)
        from starlette.testclient import TestClient
    except ImportError as exc:
        return ProbeReport(target, (), skipped=f"cannot exercise the app: {exc.name or exc} "
                                               "is not installed (pip install httpx fastapi)")
    route = path or _post_route(app)
    if route is None:
        return ProbeReport(target, (), skipped="the app has several POST routes and none is "
                                               "/predict; pass the route to probe")
    client = TestClient(app, raise_server_exceptions=False)

    def post(body: bytes) -> tuple[int, str]:
        response = client.post(route, content=body, headers={"content-type": "application/json"})
        return response.status_code, response.text

    return probe_http(post, inputs, target=f"{target} POST {route}", seed=seed)


def run_probes(target: Any, inputs: Sequence[InputSpec], *, name: str = "", seed: int = 0) -> ProbeReport:
    """Probe ``target``: an ASGI app, an onnxruntime session or a plain callable."""
    label = name or _callable_name(target)
    if is_asgi_app(target):
        return probe_asgi_app(target, inputs, target=label, seed=seed)
    if hasattr(target, "get_inputs") and hasattr(target, "run"):
        return probe_onnx_session(target, inputs, target=label, seed=seed)
    return probe_callable(target, inputs, target=label, seed=seed)


def _run(probes: Sequence[Probe], send: Callable[[Probe], tuple[bool, str]], target: str) -> ProbeReport:
    outcomes = []
    for probe in probes:
        changed = probe.changed_array()
        shape = None if changed is None else tuple(int(d) for d in changed.shape)
        dtype = None if changed is None else str(changed.dtype)
        if not probe.applicable:
            outcomes.append(ProbeOutcome(probe.name, NOT_APPLICABLE, probe.description, probe.reason))
            continue
        rejected, text = send(probe)
        if probe.name == CONTROL_NAME:
            status = FAILED if rejected else PASSED
        else:
            status = PASSED if rejected else FAILED
        logger.debug("probe %s on %s: %s (%s)", probe.name, target, status, text)
        outcomes.append(ProbeOutcome(probe.name, status, probe.description, text,
                                     probe.changed_input, shape, dtype))
    return ProbeReport(target, tuple(outcomes))


def _wrong_dtype(inputs: Sequence[InputSpec], valid: InputGroup) -> Probe:
    spec = inputs[0]
    original = valid.feed()[spec.name]
    if spec.dtype.startswith("float"):
        altered = original.astype(str)
        what = "strings"
    elif spec.dtype == "bool":
        altered = original.astype(np.float32) + 0.5
        what = "float32 values"
    else:
        altered = original.astype(np.float64) + 0.5
        what = "float64 values with a fraction"
    return _replace(valid, spec.name, altered, "wrong_dtype",
                    f"{spec.name} sent as {what} in place of {spec.dtype}")


def _wrong_rank(inputs: Sequence[InputSpec], valid: InputGroup) -> Probe:
    spec = inputs[0]
    original = valid.feed()[spec.name]
    if original.ndim >= 2:
        altered = original[0]
        what = f"without its leading axis (rank {altered.ndim} in place of {original.ndim})"
    else:
        altered = original[np.newaxis, ...]
        what = f"with an extra axis (rank {altered.ndim} in place of {original.ndim})"
    return _replace(valid, spec.name, np.ascontiguousarray(altered), "wrong_rank", f"{spec.name} sent {what}")


def _wrong_fixed_dimension(inputs: Sequence[InputSpec], valid: InputGroup) -> Probe:
    for spec in inputs:
        for axis, dim in enumerate(spec.shape):
            if not isinstance(dim, int):
                continue
            original = valid.feed()[spec.name]
            shape = list(original.shape)
            shape[axis] = dim + 1
            altered = np.resize(original, shape).astype(original.dtype)
            return _replace(valid, spec.name, altered, "wrong_fixed_dimension",
                            f"{spec.name} axis {axis} of size {dim + 1} in place of {dim}")
    return Probe("wrong_fixed_dimension", "a fixed dimension changed", None,
                 reason="no input has a fixed dimension")


def _empty_batch(inputs: Sequence[InputSpec], valid: InputGroup) -> Probe:
    arrays = tuple((name, array[:0]) for name, array in valid.arrays)
    first = inputs[0].name
    return Probe("empty_batch", "every input with a leading axis of size 0", arrays, first)


def _non_finite(inputs: Sequence[InputSpec], valid: InputGroup, name: str, value: float) -> Probe:
    label = "NaN" if np.isnan(value) else "+inf"
    for spec in inputs:
        if spec.dtype.startswith("float"):
            altered = valid.feed()[spec.name].copy()
            altered.flat[altered.size // 2] = value
            return _replace(valid, spec.name, altered, name, f"{spec.name} with one {label} element")
    return Probe(name, f"one {label} element", None, reason="no input has a floating-point dtype")


def _replace(valid: InputGroup, input_name: str, altered: np.ndarray, probe_name: str, description: str) -> Probe:
    arrays = tuple((name, altered if name == input_name else array) for name, array in valid.arrays)
    return Probe(probe_name, description, arrays, input_name)


def _json_body(arrays: Sequence[tuple[str, np.ndarray]]) -> bytes:
    # allow_nan writes NaN/Infinity literals, which strict JSON lacks but
    # Python's json (and so FastAPI) parses.
    payload = {name: array.tolist() for name, array in arrays}
    return json.dumps(payload, allow_nan=True).encode()


def _post_route(app: Any) -> str | None:
    paths = sorted({route.path for route in getattr(app, "routes", ())
                    if "POST" in (getattr(route, "methods", None) or ())})
    if len(paths) == 1:
        return paths[0]
    return "/predict" if "/predict" in paths else None


def _exception_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"raised {type(exc).__name__}: {text}"


def _callable_name(target: Any) -> str:
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None) or type(target).__name__
    return f"{module}:{qualname}" if module else qualname


def _shapes_text(group: InputGroup) -> str:
    return ", ".join(f"{name}{list(shape)}" for name, shape in group.shapes().items())
