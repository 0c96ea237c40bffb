"""Latency measurement against the budgets a model declares.

Method:

- Warm-up: the call runs until both ``warmup_calls`` calls and ``warmup_s`` seconds
  are done (one-off costs such as lazy initialisation, allocator growth and
  onnxruntime's first-run graph work fall there, not in the samples).
- Sampling: one sample per call, until both ``min_samples`` samples and ``min_s``
  seconds are collected. ``max_s`` seconds stop the loop regardless, so a slow
  model yields fewer samples (``LatencyStats.samples`` records how many). Garbage collection is
  run once before and disabled while sampling, so a collection pause does not land
  in one unlucky sample.
- Timer: on CPU, ``time.perf_counter_ns`` around each call. On CUDA, a pair of
  ``torch.cuda.Event(enable_timing=True)`` around each call, with the device
  synchronised before the start event and the end event waited for, so queued
  kernels are counted in the sample that launched them.
- Percentiles: linear interpolation between closest ranks, which is Hyndman and
  Fan's type 7 and the default ``method="linear"`` of ``numpy.percentile``. For
  ``n`` sorted samples ``x[0..n-1]`` the ``q`` quantile is at position
  ``h = (n - 1) * q``: ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``.

The clock is injectable (:func:`collect_samples` takes ``clock``), so the loop and
the percentile logic are testable with a fake clock.

``LatencyResult.to_dict()``::

    {"model": "churn", "device": "cpu", "device_name": "AMD EPYC", "runtime": "onnx",
     "batch": 1, "status": "passed" | "failed" | "skipped", "reason": "",
     "timer": "perf_counter_ns" | "cuda_event", "thread_count": 8,
     "budget_ms": {"p95": 20.0},
     "exceeded": [{"percentile": "p95", "measured_ms": 25.1, "budget_ms": 20.0}],
     "stats": {"samples": 412, "p50_ms": ..., "p95_ms": ..., "p99_ms": ...,
               "mean_ms": ..., "min_ms": ..., "max_ms": ..., "quantile_method": "..."},
     "throughput_per_s": 830.5}

``stats`` and ``throughput_per_s`` (items per second: batch size over mean latency)
are ``None`` for a skipped result.
"""

from __future__ import annotations

import gc
import logging
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_aiml.serving.inputs import InputGroup, make_batch, signature_from_session
from pytest_aiml.serving.spec import LatencyBudget, ModelSpec

__all__ = [
    "QUANTILE_METHOD",
    "LatencyResult",
    "LatencyStats",
    "SamplingPlan",
    "check_latency",
    "check_model_latency",
    "collect_cuda_samples",
    "collect_samples",
    "cpu_name",
    "cuda_unavailable_reason",
    "make_onnx_call",
    "make_torch_call",
    "quantile",
    "summarize_samples",
]

logger = logging.getLogger("pytest_aiml.serving")

QUANTILE_METHOD = "linear interpolation (Hyndman-Fan type 7, numpy.percentile default)"

Clock = Callable[[], int]
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class SamplingPlan:
    """How long to warm up and how many samples to take (see the module docstring)."""

    warmup_calls: int = 10
    warmup_s: float = 0.2
    min_samples: int = 100
    min_s: float = 1.0
    max_s: float = 30.0
    max_samples: int = 100_000

    @classmethod
    def from_budget(cls, budget: LatencyBudget) -> SamplingPlan:
        """Take the plan from a declared budget."""
        return cls(
            warmup_calls=budget.warmup_calls,
            warmup_s=budget.warmup_s,
            min_samples=budget.min_samples,
            min_s=budget.min_s,
            max_s=budget.max_s,
        )


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Summary of per-call latency samples, in milliseconds."""

    samples: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    quantile_method: str = QUANTILE_METHOD

    def percentile_ms(self, name: str) -> float:
        """Return the figure for ``"p50"``, ``"p95"`` or ``"p99"``."""
        return {"p50": self.p50_ms, "p95": self.p95_ms, "p99": self.p99_ms}[name]

    def to_dict(self) -> dict[str, Any]:
        """Return the statistics as builtins."""
        return {
            "samples": self.samples,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "quantile_method": self.quantile_method,
        }


@dataclass(frozen=True, slots=True)
class LatencyResult:
    """One latency budget checked (or skipped) for one model."""

    model: str
    device: str
    device_name: str
    runtime: str
    batch: int
    status: str
    reason: str
    timer: str
    thread_count: int | None
    budget_ms: tuple[tuple[str, float], ...]
    exceeded: tuple[tuple[str, float, float], ...] = ()
    stats: LatencyStats | None = None

    @property
    def passed(self) -> bool:
        """Whether the budget was met (``False`` for failed and skipped results)."""
        return self.status == "passed"

    @property
    def skipped(self) -> bool:
        """Whether the budget could not be checked here."""
        return self.status == "skipped"

    @property
    def throughput_per_s(self) -> float | None:
        """Items per second: the batch size over the mean latency."""
        if self.stats is None or self.stats.mean_ms <= 0:
            return None
        return self.batch * 1000.0 / self.stats.mean_ms

    def summary(self) -> str:
        """Return one line with the measured percentiles, sample count and setup."""
        if self.stats is None:
            return f"{self.model} on {self.device}: skipped ({self.reason})"
        stats = self.stats
        return (f"{self.model} {self.runtime} on {self.device} ({self.device_name}), batch {self.batch}: "
                f"p50 {stats.p50_ms:.3f} ms, p95 {stats.p95_ms:.3f} ms, p99 {stats.p99_ms:.3f} ms, "
                f"n={stats.samples}, threads={self.thread_count}, timer={self.timer}")

    def failure_text(self) -> str:
        """Return measured against budget for each exceeded percentile, empty when passed."""
        if self.status != "failed":
            return ""
        lines = [f"latency budget exceeded: {self.summary()}"]
        for name, measured, budget in self.exceeded:
            lines.append(f"  {name}: measured {measured:.3f} ms > budget {budget:.3f} ms")
        lines.append(f"  quantile method: {QUANTILE_METHOD}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as builtins (see the module docstring for the layout)."""
        return {
            "model": self.model,
            "device": self.device,
            "device_name": self.device_name,
            "runtime": self.runtime,
            "batch": self.batch,
            "status": self.status,
            "reason": self.reason,
            "timer": self.timer,
            "thread_count": self.thread_count,
            "budget_ms": dict(self.budget_ms),
            "exceeded": [
                {"percentile": name, "measured_ms": measured, "budget_ms": budget}
                for name, measured, budget in self.exceeded
            ],
            "stats": None if self.stats is None else self.stats.to_dict(),
            "throughput_per_s": self.throughput_per_s,
        }


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Return the ``q`` quantile (0 <= q <= 1) of ascending values by linear interpolation.

    Matches ``numpy.percentile(values, 100 * q)`` with its default method.
    """
    if not sorted_values:
        raise ValueError("no samples to take a quantile of")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside [0, 1]")
    position = (len(sorted_values) - 1) * q
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    fraction = position - lower
    return sorted_values[lower] + fraction * (sorted_values[upper] - sorted_values[lower])


def summarize_samples(samples_ns: Sequence[int]) -> LatencyStats:
    """Summarise per-call samples given in nanoseconds."""
    if not samples_ns:
        raise ValueError("no latency samples were collected")
    values_ms = sorted(sample / NS_PER_MS for sample in samples_ns)
    return LatencyStats(
        samples=len(values_ms),
        p50_ms=quantile(values_ms, 0.50),
        p95_ms=quantile(values_ms, 0.95),
        p99_ms=quantile(values_ms, 0.99),
        mean_ms=math.fsum(values_ms) / len(values_ms),
        min_ms=values_ms[0],
        max_ms=values_ms[-1],
    )


def collect_samples(call: Callable[[], Any], plan: SamplingPlan, *,
                    clock: Clock = time.perf_counter_ns) -> list[int]:
    """Warm up, then time each call of ``call`` with ``clock`` (nanoseconds)."""
    def timed_call() -> int:
        start = clock()
        call()
        return clock() - start

    return _sample_loop(timed_call, plan, clock)


def collect_cuda_samples(call: Callable[[], Any], plan: SamplingPlan) -> list[int]:
    """Warm up, then time each call with CUDA events; samples in nanoseconds.

    The loop's own limits (``min_s``, ``max_s``) use the host clock, which is
    only read after each call has been synchronised.

    NOTE: the events sit on torch's current stream. An onnxruntime CUDA session
    runs on its own stream, so its samples are right only because ``run`` returns
    after copying outputs to the host. This path has not been run on a GPU yet.
    """
    import torch

    start_event = torch.cuda.Event(enable_timing=True)
    end_event = torch.cuda.Event(enable_timing=True)

    def timed_call() -> int:
        torch.cuda.synchronize()
        start_event.record()
        call()
        end_event.record()
        end_event.synchronize()
        return int(start_event.elapsed_time(end_event) * NS_PER_MS)

    return _sample_loop(timed_call, plan, time.perf_counter_ns)


def check_latency(
    call: Callable[[], Any],
    budget: LatencyBudget,
    *,
    model_name: str,
    runtime: str,
    plan: SamplingPlan | None = None,
    clock: Clock | None = None,
    thread_count: int | None = None,
    device_name: str | None = None,
) -> LatencyResult:
    """Measure ``call`` on ``budget.device`` and compare the percentiles with the budget.

    ``call`` runs one prediction on a prepared batch. ``clock`` replaces
    ``time.perf_counter_ns`` for CPU timing (tests pass a fake clock); it is
    ignored on CUDA, where events time the calls. A ``cuda`` budget on a machine
    without a usable GPU returns a skipped result with the reason.
    """
    plan = plan or SamplingPlan.from_budget(budget)
    budgets = tuple(budget.budgeted_percentiles().items())
    if budget.device == "cuda":
        reason = cuda_unavailable_reason()
        if reason is not None:
            return LatencyResult(model_name, "cuda", "", runtime, budget.batch, "skipped", reason,
                                 "cuda_event", thread_count, budgets)

    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        if budget.device == "cuda":
            samples = collect_cuda_samples(call, plan)
            timer = "cuda_event"
        else:
            samples = collect_samples(call, plan, clock=clock or time.perf_counter_ns)
            timer = "perf_counter_ns"
    finally:
        if was_enabled:
            gc.enable()

    stats = summarize_samples(samples)
    exceeded = tuple(
        (name, stats.percentile_ms(name), limit)
        for name, limit in budgets
        if stats.percentile_ms(name) > limit
    )
    status = "failed" if exceeded else "passed"
    if stats.samples < plan.min_samples:
        logger.info("%s: only %d of %d latency samples within max_s=%s s",
                    model_name, stats.samples, plan.min_samples, plan.max_s)
    name = device_name if device_name is not None else _device_name(budget.device)
    return LatencyResult(model_name, budget.device, name, runtime, budget.batch, status, "",
                         timer, thread_count, budgets, exceeded, stats)


def check_model_latency(
    spec: ModelSpec,
    budget: LatencyBudget,
    root: Path,
    *,
    seed: int = 0,
    plan: SamplingPlan | None = None,
) -> LatencyResult:
    """Load the model of ``spec`` for ``budget`` and check the budget.

    The runtime is ``budget.runtime``, else the ONNX session when declared, else the
    Torch model. The input batch comes from ``spec.inputs`` (else the ONNX
    signature) with the leading dynamic axis set to ``budget.batch``. onnxruntime
    runs with as many intra-op threads as ``torch.get_num_threads()``, so both
    runtimes report the same thread count. Raises ``ValueError`` when the spec
    lacks what the runtime needs.
    """
    runtime = budget.runtime or ("onnx" if spec.onnx is not None else "torch")
    budgets = tuple(budget.budgeted_percentiles().items())
    if budget.device == "cuda":
        reason = cuda_unavailable_reason()
        if reason is not None:
            return LatencyResult(spec.name, "cuda", "", runtime, budget.batch, "skipped", reason,
                                 "cuda_event", None, budgets)

    import torch

    from pytest_aiml.serving.loading import load_onnx_session, load_torch_model, onnx_providers

    threads = torch.get_num_threads()
    session = None
    if spec.onnx is not None:
        providers = onnx_providers(use_cuda=budget.device == "cuda")
        if budget.device == "cuda" and runtime == "onnx" and "CUDAExecutionProvider" not in providers:
            return LatencyResult(spec.name, "cuda", "", runtime, budget.batch, "skipped",
                                 "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)",
                                 "cuda_event", threads, budgets)
        session = load_onnx_session(spec.onnx, providers=providers, intra_op_threads=threads)

    inputs = spec.inputs or (signature_from_session(session) if session is not None else ())
    if not inputs:
        raise ValueError(f"model {spec.name!r} has no ONNX file and no declared inputs; declare "
                         "inputs = [{ name = ..., dtype = ..., shape = [...] }] to time it")
    batch = make_batch(inputs, budget.batch, seed=seed)

    if runtime == "onnx":
        if session is None:
            raise ValueError(f"latency budget of {spec.name!r} asks for runtime 'onnx' but no "
                             "onnx file is declared")
        call = make_onnx_call(session, batch)
    else:
        if not spec.has_torch:
            raise ValueError(f"latency budget of {spec.name!r} asks for runtime 'torch' but no "
                             "torch file or factory is declared")
        model = load_torch_model(spec, root)
        call = make_torch_call(model, batch, device=budget.device)
    return check_latency(call, budget, model_name=spec.name, runtime=runtime, plan=plan,
                         thread_count=threads)


def make_onnx_call(session: Any, group: InputGroup) -> Callable[[], Any]:
    """Return a call that runs the session on the group's arrays."""
    feed = group.feed()
    return lambda: session.run(None, feed)


def make_torch_call(model: Any, group: InputGroup, *, device: str = "cpu") -> Callable[[], Any]:
    """Return a call that runs the model on ``device`` without autograd.

    The model and the inputs are moved to ``device`` once, here, so the samples
    do not include host-to-device copies of the inputs.
    """
    import torch

    from pytest_aiml.serving.runtime import torch_inputs

    if device != "cpu" and hasattr(model, "to"):
        model = model.to(device)
    tensors = torch_inputs(group, device)

    def call() -> Any:
        with torch.no_grad():
            return model(*tensors)

    return call


def cuda_unavailable_reason() -> str | None:
    """Return why CUDA timing cannot run here, or ``None`` when a GPU is usable."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        return f"no CUDA GPU available (torch {torch.__version__}, {build})"
    return None


def cpu_name() -> str:
    """Return the processor model name from ``/proc/cpuinfo``, else what ``platform`` reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name()
    return cpu_name()


def _sample_loop(timed_call: Callable[[], int], plan: SamplingPlan, clock: Clock) -> list[int]:
    max_ns = plan.max_s * NS_PER_S

    warmup_start = clock()
    calls = 0
    while True:
        elapsed = clock() - warmup_start
        if calls >= plan.warmup_calls and elapsed >= plan.warmup_s * NS_PER_S:
            break
        if elapsed >= max_ns:
            break
        timed_call()
        calls += 1

    samples: list[int] = []
    sampling_start = clock()
    while len(samples) < plan.max_samples:
        elapsed = clock() - sampling_start
        enough = len(samples) >= plan.min_samples and elapsed >= plan.min_s * NS_PER_S
        if enough or (samples and elapsed >= max_ns):
            break
        samples.append(timed_call())
    return samples
