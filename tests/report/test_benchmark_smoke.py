"""The benchmark script: its generated codebase, and a ``--quick`` run end to end."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "run_benchmark.py"


@pytest.fixture(scope="module")
def benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is created.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_generated_codebase_parses(benchmark: ModuleType, tmp_path: Path) -> None:
    written = benchmark.generate_codebase(tmp_path, files=5, seed=3)
    assert len(written) == 5
    for path in written:
        source = path.read_text(encoding="utf-8")
        ast.parse(source, filename=str(path))
        assert 100 <= source.count("\n") <= 450, path


def test_generated_codebase_is_deterministic(benchmark: ModuleType, tmp_path: Path) -> None:
    first = benchmark.generate_codebase(tmp_path / "first", files=5, seed=3)
    second = benchmark.generate_codebase(tmp_path / "second", files=5, seed=3)
    other = benchmark.generate_codebase(tmp_path / "other", files=5, seed=4)
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]
    assert [path.read_bytes() for path in first] != [path.read_bytes() for path in other]


def test_generated_codebase_has_findings(benchmark: ModuleType, tmp_path: Path) -> None:
    written = benchmark.generate_codebase(tmp_path, files=200, seed=0)
    text = "\n".join(path.read_text(encoding="utf-8") for path in written)
    for usage in ("import torch", "from sklearn", "from fastapi import FastAPI", "from openai import OpenAI"):
        assert usage in text
    anti_patterns = text.count("pickle.load(") + text.count("joblib.load(") + text.count("exec(response")
    assert 2 <= anti_patterns <= 30


def test_targets_compare_ratios(benchmark: ModuleType) -> None:
    measured = {
        name: benchmark.Measurement(seconds=seconds, exit_code=0)
        for name, seconds in {
            "ast_parse": 2.0, "cold": 10.0, "warm": 1.5, "one_file_changed": 1.6, "cold_n2": 5.0, "bandit": 40.0,
            "cold_one_process": 9.0, "pytest_start": 1.0, "plugin_start": 0.0123,
        }.items()
    }
    targets = {target["target"]: target for target in benchmark.evaluate_targets(measured)}
    assert targets["cold / bandit"]["value"] == 0.25
    assert targets["cold / bandit"]["met"] is True
    assert targets["cold / cold -n 2 (speed-up)"]["value"] == 2.0
    assert targets["cold / cold -n 2 (speed-up)"]["met"] is True
    assert targets["one file changed / warm"]["met"] is True
    assert targets["cold, one process / cold -n 2"]["value"] == 1.8
    # The plugin's start-up cost is absolute, in milliseconds.
    assert targets["plugin start-up, plain pytest (ms)"]["value"] == 12.3
    assert targets["plugin start-up, plain pytest (ms)"]["met"] is False
    measured["bandit"] = benchmark.Measurement(seconds=None, exit_code=None, note="bandit is not on PATH")
    targets = {target["target"]: target for target in benchmark.evaluate_targets(measured)}
    assert targets["cold / bandit"]["met"] is None


def test_repeated_runs_keep_the_median(benchmark: ModuleType) -> None:
    def measured(ast_parse: float, cold: float | None) -> dict:
        return {
            "ast_parse": benchmark.Measurement(seconds=ast_parse, exit_code=0),
            "cold": benchmark.Measurement(seconds=cold, exit_code=0 if cold else None, note="" if cold else "timed out"),
        }

    combined = benchmark.median_of([measured(1.0, 6.0), measured(3.0, 9.0), measured(2.0, None)])
    assert combined["ast_parse"].seconds == 2.0
    assert combined["ast_parse"].note == "median of 3 runs (1.00, 2.00, 3.00 s)"
    # Of two timed runs the faster is kept; the timed-out one is left out of the median.
    assert combined["cold"].seconds == 6.0
    assert combined["cold"].ratio_to_ast_parse == 3.0


def test_quick_run_writes_record(tmp_path: Path) -> None:
    output = tmp_path / "record.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", f"--output={output}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    record = json.loads(output.read_text(encoding="utf-8"))
    measurements = record["measurements"]
    assert set(measurements) == {
        "ast_parse", "pytest_start", "plugin_start", "cold", "warm", "pytest_items", "one_file_changed", "cold_one_process",
        "cold_n2", "bandit",
    }
    for name in ("ast_parse", "cold", "warm", "one_file_changed"):
        assert measurements[name]["seconds"] > 0, name
        assert measurements[name]["exit_code"] in (0, 1), name
    assert measurements["ast_parse"]["ratio_to_ast_parse"] == 1.0
    # The floor runs as many trivial tests as the warm run has items, and they all pass.
    assert measurements["pytest_items"]["exit_code"] == 0
    assert "trivial tests, as many as the warm run's items" in measurements["pytest_items"]["note"]
    # A probe inside a plain pytest run timed the plugin's import and hooks.
    assert measurements["plugin_start"]["seconds"] > 0
    assert "importing the plugin module and running its hooks" in measurements["plugin_start"]["note"]
    assert record["machine"]["cpu_count"] >= 1
    assert record["codebase"]["generated"] == {"files": 12, "seed": 0}
    assert "x ast.parse" in completed.stdout


def test_help_runs(tmp_path: Path) -> None:
    completed = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30)
    assert completed.returncode == 0
    assert "--quick" in completed.stdout


def test_import_has_no_side_effects(tmp_path: Path) -> None:
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('run_benchmark', {str(SCRIPT)!r})\n"
        "module = sys.modules['run_benchmark'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ""
    assert list(tmp_path.iterdir()) == []
