"""Latency sampling, percentiles and budgets, with a fake clock and on real models."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

from pytest_aiml.serving.latency import (
    QUANTILE_METHOD,
    SamplingPlan,
    check_latency,
    check_model_latency,
    collect_samples,
    cuda_unavailable_reason,
    quantile,
    summarize_samples,
)
from pytest_aiml.serving.spec import InputSpec, LatencyBudget, ModelSpec

torch = pytest.importorskip("torch")

# TorchScript files are built here with torch.jit, which torch 2.13 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MS = 1_000_000
NO_GPU = not torch.cuda.is_available()


class FakeClock:
    """A nanosecond clock that moves only when a fake call advances it."""

    def __init__(self, durations_ms):
        self.now = 0
        self.durations = list(durations_ms)
        self.calls = 0

    def __call__(self) -> int:
        return self.now

    def call(self) -> None:
        self.now += int(self.durations[self.calls % len(self.durations)] * MS)
        self.calls += 1


def plan(**overrides) -> SamplingPlan:
    settings = {"warmup_calls": 0, "warmup_s": 0.0, "min_samples": 1, "min_s": 0.0, "max_s": 60.0}
    settings.update(overrides)
    return SamplingPlan(**settings)


@pytest.mark.parametrize("count", [1, 2, 5, 10, 101, 1000])
def test_quantile_matches_numpy_linear(count):
    values = sorted(np.random.default_rng(count).exponential(3.0, size=count).tolist())

    for q in (0.0, 0.25, 0.5, 0.95, 0.99, 1.0):
        assert quantile(values, q) == pytest.approx(np.percentile(values, 100 * q), rel=1e-12)


def test_quantile_interpolates_between_ranks():
    assert quantile([10.0, 20.0], 0.95) == pytest.approx(19.5)
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0


def test_quantile_rejects_bad_arguments():
    with pytest.raises(ValueError, match="no samples"):
        quantile([], 0.5)
    with pytest.raises(ValueError, match="outside"):
        quantile([1.0], 1.5)


def test_summary_of_known_samples():
    stats = summarize_samples([ms * MS for ms in range(1, 101)])

    assert stats.samples == 100
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p95_ms == pytest.approx(95.05)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.mean_ms == pytest.approx(50.5)
    assert stats.min_ms == 1.0
    assert stats.max_ms == 100.0
    assert stats.quantile_method == QUANTILE_METHOD
    assert "type 7" in QUANTILE_METHOD


def test_count_based_warmup_is_excluded():
    clock = FakeClock([100, 100, 100, 1, 2, 3, 4, 5])

    samples = collect_samples(clock.call, plan(warmup_calls=3, min_samples=5), clock=clock)

    assert [sample // MS for sample in samples] == [1, 2, 3, 4, 5]


def test_time_based_warmup_runs_until_elapsed():
    clock = FakeClock([4])

    collect_samples(clock.call, plan(warmup_s=0.010, min_samples=1), clock=clock)

    # 0, 4 and 8 ms elapsed are under 10 ms, so three warm-up calls, then one sample.
    assert clock.calls == 4


def test_time_based_sampling_collects_until_min_time():
    clock = FakeClock([4])

    samples = collect_samples(clock.call, plan(min_samples=1, min_s=0.020), clock=clock)

    assert len(samples) == 5


def test_max_time_stops_sampling():
    clock = FakeClock([10])

    samples = collect_samples(clock.call, plan(min_samples=1000, max_s=0.050), clock=clock)

    assert len(samples) == 5


def test_max_samples_caps_sampling():
    clock = FakeClock([1])

    samples = collect_samples(clock.call, plan(min_samples=10, min_s=100.0, max_s=1000.0,
                                               max_samples=7), clock=clock)

    assert len(samples) == 7


def test_gc_paused_while_timing():
    clock = FakeClock([1])
    states = []

    def call():
        states.append(gc.isenabled())
        clock.call()

    check_latency(call, LatencyBudget(device="cpu", batch=1, p95_ms=5.0),
                  model_name="m", runtime="onnx", plan=plan(min_samples=3), clock=clock)

    assert states == [False, False, False]
    assert gc.isenabled()


def test_budget_met_with_fake_clock():
    clock = FakeClock([1, 2, 3, 4])
    budget = LatencyBudget(device="cpu", batch=4, p50_ms=3.0, p99_ms=4.0)

    result = check_latency(clock.call, budget, model_name="m", runtime="torch",
                           plan=plan(min_samples=100), clock=clock, thread_count=2,
                           device_name="test cpu")

    assert result.passed
    assert result.stats.samples == 100
    assert result.stats.p50_ms == pytest.approx(2.5)
    assert result.throughput_per_s == pytest.approx(4 * 1000 / 2.5)
    assert result.failure_text() == ""


def test_budget_exceeded_shows_measured_against_budget():
    clock = FakeClock([1] * 90 + [9] * 10)
    budget = LatencyBudget(device="cpu", batch=1, p50_ms=2.0, p95_ms=5.0)

    result = check_latency(clock.call, budget, model_name="churn", runtime="onnx",
                           plan=plan(min_samples=100), clock=clock, thread_count=4,
                           device_name="test cpu")

    assert result.status == "failed"
    assert result.exceeded == (("p95", pytest.approx(9.0), 5.0),)
    text = result.failure_text()
    assert "p95: measured 9.000 ms > budget 5.000 ms" in text
    assert "n=100" in text
    assert "threads=4" in text
    assert "test cpu" in text


def test_result_to_dict_is_builtins():
    clock = FakeClock([2])
    result = check_latency(clock.call, LatencyBudget(device="cpu", batch=1, p95_ms=1.0),
                           model_name="m", runtime="onnx", plan=plan(min_samples=10),
                           clock=clock, thread_count=1, device_name="cpu x")

    data = result.to_dict()

    assert data["status"] == "failed"
    assert data["budget_ms"] == {"p95": 1.0}
    assert data["exceeded"] == [{"percentile": "p95", "measured_ms": 2.0, "budget_ms": 1.0}]
    assert data["stats"]["samples"] == 10
    assert data["timer"] == "perf_counter_ns"
    assert data["device_name"] == "cpu x"
    json.dumps(data)


@pytest.fixture
def mlp_spec(exported) -> ModelSpec:
    return ModelSpec(name="mlp", onnx=exported["mlp"].onnx_path)


FAST_PLAN = {"warmup_calls": 3, "warmup_s": 0.0, "min_samples": 30, "min_s": 0.0, "max_s": 5.0}


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_real_model_meets_generous_cpu_budget(exported, tmp_path, runtime):
    torch.jit.save(torch.jit.trace(exported["mlp"].model, (torch.randn(2, 8),)), str(tmp_path / "m.pt"))
    spec = ModelSpec(name="mlp", onnx=exported["mlp"].onnx_path, torch=tmp_path / "m.pt")
    budget = LatencyBudget(device="cpu", batch=1, p95_ms=1000.0, runtime=runtime, **FAST_PLAN)

    result = check_model_latency(spec, budget, tmp_path)

    assert result.passed, result.failure_text()
    assert result.runtime == runtime
    assert result.stats.samples >= 30
    assert result.thread_count == torch.get_num_threads()
    assert result.device_name
    assert 0 < result.stats.p50_ms <= result.stats.p95_ms <= result.stats.p99_ms


def test_real_model_fails_tiny_cpu_budget(mlp_spec, tmp_path):
    budget = LatencyBudget(device="cpu", batch=8, p99_ms=1e-6, **FAST_PLAN)

    result = check_model_latency(mlp_spec, budget, tmp_path)

    assert result.status == "failed"
    assert result.runtime == "onnx"
    assert result.exceeded[0][0] == "p99"
    assert "p99: measured" in result.failure_text()


def test_torch_runtime_needs_torch_side(mlp_spec, tmp_path):
    budget = LatencyBudget(device="cpu", batch=1, p95_ms=1.0, runtime="torch", **FAST_PLAN)

    with pytest.raises(ValueError, match="no torch file or factory"):
        check_model_latency(mlp_spec, budget, tmp_path)


def test_torch_only_model_needs_declared_inputs(exported, tmp_path):
    torch.jit.save(torch.jit.trace(exported["mlp"].model, (torch.randn(2, 8),)), str(tmp_path / "m.pt"))
    bare = ModelSpec(name="m", torch=tmp_path / "m.pt")
    declared = ModelSpec(name="m", torch=tmp_path / "m.pt",
                         inputs=(InputSpec("features", "float32", ("batch", 8)),))
    budget = LatencyBudget(device="cpu", batch=2, p95_ms=1000.0, **FAST_PLAN)

    with pytest.raises(ValueError, match="no declared inputs"):
        check_model_latency(bare, budget, tmp_path)
    assert check_model_latency(declared, budget, tmp_path).passed


@pytest.mark.skipif(not NO_GPU, reason="a CUDA GPU is present")
def test_cuda_budget_skipped_without_gpu(mlp_spec, tmp_path):
    budget = LatencyBudget(device="cuda", batch=32, p99_ms=5.0)

    result = check_model_latency(mlp_spec, budget, tmp_path)
    direct = check_latency(lambda: None, budget, model_name="m", runtime="torch")

    for skipped in (result, direct):
        assert skipped.status == "skipped"
        assert skipped.skipped
        assert not skipped.passed
        assert skipped.reason.startswith("no CUDA GPU available")
        assert skipped.stats is None
        assert skipped.to_dict()["throughput_per_s"] is None
    assert cuda_unavailable_reason() == result.reason


@pytest.mark.skipif(NO_GPU, reason="no CUDA GPU available")
def test_cuda_budget_timed_with_events(exported, tmp_path):
    torch.jit.save(torch.jit.trace(exported["mlp"].model, (torch.randn(2, 8),)), str(tmp_path / "m.pt"))
    spec = ModelSpec(name="mlp", onnx=exported["mlp"].onnx_path, torch=tmp_path / "m.pt")
    budget = LatencyBudget(device="cuda", batch=32, p99_ms=1000.0, runtime="torch", **FAST_PLAN)

    result = check_model_latency(spec, budget, tmp_path)

    assert result.passed, result.failure_text()
    assert result.timer == "cuda_event"
    assert result.device_name == torch.cuda.get_device_name()
    assert result.stats.samples >= 30
