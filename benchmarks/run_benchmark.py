"""Measure pytest-aiml against ``ast.parse`` and Bandit on one codebase, in one run.

Usage::

    python benchmarks/run_benchmark.py                  # a generated codebase of 600 files
    python benchmarks/run_benchmark.py /path/to/repo    # a real repository (copied first)
    python benchmarks/run_benchmark.py --quick          # a 12-file codebase, for a smoke test

Every measurement is the wall time of a fresh subprocess, so interpreter and pytest
start-up are included. The script measures ``ast.parse`` of every Python file (the
baseline) and a cold ``pytest --aiml-only`` with an empty cache folder. Then it
measures a warm run on the same cache and a run after one line was appended to one
file. A cold ``-n 2`` run follows when pytest-xdist is installed, and ``bandit -r -q``
when Bandit is on PATH. A probe plugin times pytest-aiml's own work in a plain pytest
run, without ``--aiml``. The codebase is copied into a temporary folder first, so that
the edit never touches the original. Each figure is printed as seconds and as a ratio
to the baseline, and the run is written as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Folders never copied into the benchmark's work folder, nor counted as code.
SKIPPED_FOLDERS = frozenset({".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".tox"})
DEFAULT_FILES = 600
QUICK_FILES = 12
#: The targets, as ``(name, numerator, denominator, comparison, limit)`` over measurement names.
TARGETS = (
    ("cold / bandit", "cold", "bandit", "<=", 0.5),
    ("cold / ast.parse", "cold", "ast_parse", "<=", 6.0),
    ("warm / ast.parse", "warm", "ast_parse", "<=", 1.0),
    ("one file changed / warm", "one_file_changed", "warm", "<=", 1.2),
    ("cold / cold -n 2 (speed-up)", "cold", "cold_n2", ">=", 1.6),
    # A plain cold run already parses over every core; one process is what -n 2 divides.
    ("cold, one process / cold -n 2", "cold_one_process", "cold_n2", ">=", 1.6),
    # Absolute, in milliseconds: pytest-aiml's own work in a plain pytest run, without --aiml.
    ("plugin start-up, plain pytest (ms)", "plugin_start", None, "<=", 10.0),
)
#: Plain pytest runs behind the plugin's start-up cost.
START_UP_RUNS = 5
QUICK_START_UP_RUNS = 1

# -- the synthetic codebase --------------------------------------------------------------

AREAS = ("data", "models", "training", "features", "serving", "llm", "utils")
AREA_WEIGHTS = (3, 3, 3, 2, 2, 1, 2)
IMPORTS = {
    "data": ["import json", "from pathlib import Path", "", "import numpy as np", "import pandas as pd"],
    "models": ["import math", "", "import torch", "from torch import nn"],
    "training": ["import logging", "", "import torch", "from torch import nn", "from torch.utils.data import DataLoader"],
    "features": [
        "import numpy as np", "import pandas as pd", "from sklearn.linear_model import LogisticRegression",
        "from sklearn.model_selection import train_test_split", "from sklearn.pipeline import Pipeline",
        "from sklearn.preprocessing import StandardScaler",
    ],
    "serving": ["import logging", "", "from fastapi import FastAPI", "from pydantic import BaseModel"],
    "llm": ["import os", "", "from openai import OpenAI"],
    "utils": ["import functools", "import itertools", "import time"],
}
#: Roughly one file in this many gets a finding, as a real codebase has a few.
FINDING_RATE = 25
TOPICS = ("churn", "fraud", "ranking", "pricing", "demand", "search", "support", "vision", "speech", "credit")


@dataclass(frozen=True)
class Codebase:
    """The Python files of a codebase and their size."""

    python_files: int
    lines: int
    bytes: int


def generate_codebase(root: Path, files: int = DEFAULT_FILES, seed: int = 0) -> list[Path]:
    """Write a deterministic ML codebase of ``files`` Python modules under ``root``; return their paths.

    The modules have 100 to 400 lines each. They mix torch models and training loops,
    scikit-learn pipelines, pandas data loading, FastAPI routes and OpenAI calls. About
    one in 25 carries a finding: an unsafe load, a hardcoded model path, an unvalidated
    route or executed LLM output. The same ``files`` and ``seed`` give the same bytes.
    """
    rng = random.Random(seed)
    package = root / "src" / "synthml"
    package.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "synthml"\nversion = "1.0.0"\n'
        'dependencies = ["torch>=2.1", "scikit-learn", "pandas", "fastapi", "openai"]\n\n'
        "[tool.pytest.ini_options]\n",
        encoding="utf-8",
    )
    written = []
    for index in range(files):
        area = rng.choices(AREAS, weights=AREA_WEIGHTS)[0]
        path = package / area / f"{area}_{index:04d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_module_text(rng, area, index), encoding="utf-8")
        written.append(path)
    for folder in {path.parent for path in written} | {package}:
        (folder / "__init__.py").touch()
    return written


def _module_text(rng: random.Random, area: str, index: int) -> str:
    topic = rng.choice(TOPICS)
    lines = [f'"""{area.capitalize()} code for the {topic} models (module {index})."""', "", *IMPORTS[area], ""]
    if area == "serving":
        lines += ["log = logging.getLogger(__name__)", "app = FastAPI()", ""]
    target = rng.randint(100, 380)
    block = 0
    while len(lines) < target:
        lines += ["", *_block(rng, area, f"{topic}_{index}_{block}"), ""]
        block += 1
    if rng.randrange(FINDING_RATE) == 0:
        lines += ["", *_finding(rng, area, f"{topic}_{index}")]
    return "\n".join(lines).rstrip() + "\n"


def _block(rng: random.Random, area: str, name: str) -> list[str]:
    kinds = {
        "data": [_data_loader, _utility],
        "models": [_torch_module, _evaluation],
        "training": [_training_loop, _evaluation, _utility],
        "features": [_sklearn_pipeline, _utility],
        "serving": [_route],
        "llm": [_llm_call, _utility],
        "utils": [_utility],
    }[area]
    return rng.choice(kinds)(rng, name)


def _utility(rng: random.Random, name: str) -> list[str]:
    return [
        f"def weighted_{name}(values, scale={rng.uniform(0.1, 3):.3f}):",
        f'    """Return the rank-weighted sum of ``values``, scaled by {name}."""',
        "    total = 0.0",
        "    for index, value in enumerate(values):",
        "        if value is None:",
        "            continue",
        "        total += float(value) * scale / (index + 1)",
        "    return total",
        "",
        "",
        f"def window_{name}(values, size={rng.randint(2, 16)}):",
        "    buffer = []",
        "    for value in values:",
        "        buffer.append(value)",
        "        if len(buffer) > size:",
        "            buffer.pop(0)",
        "        yield sum(buffer) / len(buffer)",
    ]


def _data_loader(rng: random.Random, name: str) -> list[str]:
    return [
        f"def load_{name}(folder: Path) -> pd.DataFrame:",
        f'    """Read the {name} partitions and drop rows without a label."""',
        "    frames = []",
        f'    for path in sorted(folder.glob("{name}-*.parquet")):',
        "        frame = pd.read_parquet(path)",
        f'        frame["source"] = path.stem',
        "        frames.append(frame)",
        "    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()",
        f'    data = data.dropna(subset=["label"]) if "label" in data else data',
        f"    data['score'] = np.clip(data.get('score', 0), 0, {rng.randint(1, 100)})",
        "    return data",
        "",
        "",
        f"def describe_{name}(data: pd.DataFrame) -> str:",
        "    summary = {column: float(data[column].mean()) for column in data.select_dtypes('number')}",
        "    return json.dumps(summary, sort_keys=True)",
    ]


def _torch_module(rng: random.Random, name: str) -> list[str]:
    class_name = "".join(part.capitalize() for part in name.split("_")) + "Net"
    return [
        f"class {class_name}(nn.Module):",
        f'    """A small classifier for {name}."""',
        "",
        f"    def __init__(self, in_features: int = {rng.choice([16, 32, 64, 128])}, hidden: int = {rng.choice([64, 128, 256])}, classes: int = {rng.randint(2, 10)}) -> None:",
        "        super().__init__()",
        "        self.encoder = nn.Sequential(",
        "            nn.Linear(in_features, hidden),",
        "            nn.ReLU(),",
        f"            nn.Dropout({rng.uniform(0.0, 0.5):.2f}),",
        "            nn.Linear(hidden, hidden),",
        "            nn.ReLU(),",
        "        )",
        "        self.head = nn.Linear(hidden, classes)",
        f"        self.temperature = math.sqrt({rng.randint(1, 9)})",
        "",
        "    def forward(self, inputs: torch.Tensor) -> torch.Tensor:",
        "        features = self.encoder(inputs)",
        "        return self.head(features) / self.temperature",
    ]


def _training_loop(rng: random.Random, name: str) -> list[str]:
    return [
        f"def train_{name}(model: nn.Module, loader: DataLoader, epochs: int = {rng.randint(1, 50)}, lr: float = {rng.choice([1e-3, 3e-4, 1e-4])}) -> nn.Module:",
        "    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)",
        "    criterion = nn.CrossEntropyLoss()",
        "    model.train()",
        "    for epoch in range(epochs):",
        "        running = 0.0",
        "        for batch, labels in loader:",
        "            optimizer.zero_grad()",
        "            loss = criterion(model(batch), labels)",
        "            loss.backward()",
        "            optimizer.step()",
        "            running += loss.item()",
        '        logging.info("epoch %d: loss %.4f", epoch, running / max(len(loader), 1))',
        "    return model",
    ]


def _evaluation(rng: random.Random, name: str) -> list[str]:
    return [
        f"def evaluate_{name}(model: nn.Module, loader) -> float:",
        "    model.eval()",
        "    correct = 0",
        "    seen = 0",
        "    with torch.no_grad():",
        "        for batch, labels in loader:",
        "            predictions = model(batch).argmax(dim=1)",
        "            correct += int((predictions == labels).sum())",
        "            seen += len(labels)",
        "    return correct / max(seen, 1)",
    ]


def _sklearn_pipeline(rng: random.Random, name: str) -> list[str]:
    return [
        f"def build_{name}_pipeline(C: float = {rng.uniform(0.01, 10):.3f}) -> Pipeline:",
        "    return Pipeline(",
        "        [",
        '            ("scale", StandardScaler()),',
        f'            ("model", LogisticRegression(C=C, max_iter={rng.choice([100, 200, 500])})),',
        "        ]",
        "    )",
        "",
        "",
        f'def fit_{name}(frame: pd.DataFrame, target: str = "label"):',
        "    features = frame.drop(columns=[target])",
        "    labels = frame[target]",
        f"    train_x, test_x, train_y, test_y = train_test_split(features, labels, test_size=0.2, random_state={rng.randint(0, 999)})",
        f"    pipeline = build_{name}_pipeline()",
        "    pipeline.fit(train_x, train_y)",
        "    return pipeline, float(np.round(pipeline.score(test_x, test_y), 4))",
    ]


def _route(rng: random.Random, name: str) -> list[str]:
    class_name = "".join(part.capitalize() for part in name.split("_")) + "Request"
    return [
        f"class {class_name}(BaseModel):",
        "    values: list[float]",
        "    request_id: str",
        "",
        "",
        f'@app.post("/{name.replace("_", "/")}")',
        f"def score_{name}(request: {class_name}) -> dict:",
        f"    scores = [value * {rng.uniform(0.5, 2):.3f} for value in request.values]",
        '    log.info("scored %d values for %s", len(scores), request.request_id)',
        '    return {"request_id": request.request_id, "scores": scores}',
    ]


def _llm_call(rng: random.Random, name: str) -> list[str]:
    return [
        f"def answer_{name}(client: OpenAI, question: str) -> str:",
        "    messages = [",
        f'        {{"role": "system", "content": "You answer questions about {name.split("_")[0]} reports."}},',
        '        {"role": "user", "content": question},',
        "    ]",
        "    response = client.chat.completions.create(",
        f'        model=os.environ.get("LLM_MODEL", "gpt-4o-mini"), messages=messages, temperature={rng.uniform(0, 1):.2f}',
        "    )",
        '    return response.choices[0].message.content or ""',
    ]


def _finding(rng: random.Random, area: str, name: str) -> list[str]:
    """Return a block with one anti-pattern the plugin reports."""
    if area == "serving":
        return [
            f'@app.post("/legacy/{name}")',
            f"def legacy_{name}(payload: dict) -> dict:",
            "    import joblib",
            "",
            f'    model = joblib.load("/opt/models/{name}.joblib")',
            '    return {"prediction": model.predict([payload["features"]]).tolist()}',
        ]
    if area == "llm":
        return [
            f"def run_generated_{name}(client: OpenAI, task: str) -> None:",
            '    response = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": task}])',
            "    exec(response.choices[0].message.content)",
        ]
    return [
        "import pickle",
        "",
        "",
        f"def restore_{name}():",
        f'    with open("/mnt/shared/models/{name}.pkl", "rb") as handle:',
        "        return pickle.load(handle)",
    ]


# -- measuring ---------------------------------------------------------------------------


@dataclass
class Measurement:
    """One timed subprocess."""

    seconds: float | None
    exit_code: int | None
    #: Peak resident set of the command's largest process, in MiB (None where ``os.wait4`` is missing).
    max_rss_mib: float | None = None
    note: str = ""
    ratio_to_ast_parse: float | None = None


def python_files(root: Path) -> list[Path]:
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if name not in SKIPPED_FOLDERS)
        found.extend(Path(folder) / name for name in sorted(names) if name.endswith(".py"))
    return found


def measure_codebase(files: Sequence[Path]) -> Codebase:
    lines = size = 0
    for path in files:
        data = path.read_bytes()
        size += len(data)
        lines += data.count(b"\n")
    return Codebase(python_files=len(files), lines=lines, bytes=size)


#: Left out of every measured command's environment: pytest options and plugins set for
#: this shell, and PYTHONDONTWRITEBYTECODE, which some CI images and sandboxes set. Without
#: bytecode files every run compiles pytest-aiml (and pytest's assertion rewriting of it)
#: again, which is about 0.8 s that a user's machine does not pay.
NOT_INHERITED = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTHONDONTWRITEBYTECODE")


def measured_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}


def run_timed(command: Sequence[str], cwd: Path, timeout: float) -> Measurement:
    """Run ``command`` with its output discarded; return its wall time, exit code and peak memory."""
    timed_out = threading.Event()
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=measured_environment(), stdout=subprocess.DEVNULL, stderr=errors)
        timer = threading.Timer(timeout, lambda: (timed_out.set(), process.kill()))
        timer.start()
        try:
            exit_code, peak = _wait(process)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        errors.seek(0)
        lines = errors.read().decode(errors="replace").strip().splitlines()
    if timed_out.is_set():
        return Measurement(seconds=None, exit_code=None, note=f"timed out after {timeout:.0f} s")
    # pytest exits 1 when items fail and Bandit when it finds issues; both are normal runs.
    note = lines[-1] if exit_code not in (0, 1) and lines else ""
    return Measurement(seconds=round(seconds, 3), exit_code=exit_code, max_rss_mib=peak, note=note)


def _wait(process: subprocess.Popen[bytes]) -> tuple[int, float | None]:
    """Wait for ``process``; return its exit code and the peak RSS of its largest process in MiB."""
    if not hasattr(os, "wait4"):
        return process.wait(), None
    # wait4 reports the maximum resident set of the child and of every descendant it
    # waited for (pytest-xdist workers, process pools), which Popen.wait would discard.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    peak = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return process.returncode, round(peak, 1)


AST_PARSE_SCRIPT = """
import ast, sys
errors = 0
for name in open(sys.argv[1], encoding="utf-8").read().splitlines():
    with open(name, "rb") as stream:
        source = stream.read()
    try:
        ast.parse(source, filename=name)
    except (SyntaxError, ValueError):
        errors += 1
sys.exit(0 if errors == 0 else 1)
"""


def pytest_command(cache: Path, config: Path, rootdir: Path, *extra: str) -> list[str]:
    # An empty ini file keeps the repository's own addopts (coverage, doctests, plugins)
    # out of the measurement; [tool.pytest-aiml] settings still apply from the rootdir.
    return [
        sys.executable, "-m", "pytest", "--aiml-only", "-p", "no:randomly", "-q", f"--rootdir={rootdir}",
        "-c", str(config), "-o", f"cache_dir={cache}", *extra,
    ]


def run_benchmark(
    codebase: Path, work: Path, *, timeout: float, use_bandit: bool = True, start_up_runs: int = START_UP_RUNS
) -> dict[str, Measurement]:
    """Take every measurement over ``codebase`` (already a copy that may be edited), in order."""
    files = python_files(codebase)
    listing = work / "python-files.txt"
    listing.write_text("\n".join(str(path) for path in files) + "\n", encoding="utf-8")
    config = work / "pytest.ini"
    config.write_text("[pytest]\n", encoding="utf-8")
    results: dict[str, Measurement] = {}

    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    # Not measured: a run that imports every module of pytest-aiml and its rules once, so
    # that their bytecode exists, as it does on any machine after the first run.
    run_timed(
        [sys.executable, "-m", "pytest", "--aiml-only", "-q", "-p", "no:randomly", f"--rootdir={empty}", "-c", str(config),
         "-o", f"cache_dir={work / 'cache-warm-up'}", "--collect-only"],
        empty, timeout,
    )
    results["ast_parse"] = run_timed([sys.executable, "-c", AST_PARSE_SCRIPT, str(listing)], codebase, timeout)
    # What every pytest run pays before pytest-aiml does anything: the interpreter, pytest
    # and every installed plugin, measured on an empty folder.
    results["pytest_start"] = run_timed(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", f"--rootdir={empty}", "-c", str(config),
         "-o", f"cache_dir={work / 'cache-empty'}", "--collect-only"],
        empty, timeout,
    )
    results["pytest_start"].note = "pytest --collect-only on an empty folder, same plugins (exit 5: nothing collected)"
    results["plugin_start"] = _plugin_start_cost(empty, config, work, timeout, runs=start_up_runs)
    cache = work / "cache"
    results["cold"] = run_timed(pytest_command(cache, config, codebase), codebase, timeout)
    results["warm"] = run_timed(pytest_command(cache, config, codebase), codebase, timeout)
    results["pytest_items"] = _items_floor(work, config, cache, codebase, timeout)
    edited = files[len(files) // 2]
    with edited.open("a", encoding="utf-8") as stream:
        stream.write("# edited by the benchmark\n")
    results["one_file_changed"] = run_timed(pytest_command(cache, config, codebase), codebase, timeout)
    results["one_file_changed"].note = f"appended a comment line to {edited.relative_to(codebase).as_posix()}"

    results["cold_one_process"] = run_timed(
        pytest_command(work / "cache-one-process", config, codebase, "--aiml-jobs=1"), codebase, timeout
    )
    if importlib.util.find_spec("xdist") is not None:
        command = pytest_command(work / "cache-n2", config, codebase, "-n", "2")
        results["cold_n2"] = run_timed(command, codebase, timeout)
    else:
        results["cold_n2"] = Measurement(seconds=None, exit_code=None, note="pytest-xdist is not installed")

    bandit = shutil.which("bandit") if use_bandit else None
    if bandit is not None:
        results["bandit"] = run_timed([bandit, "-r", "-q", "."], codebase, timeout)
    else:
        results["bandit"] = Measurement(seconds=None, exit_code=None, note="bandit is not on PATH" if use_bandit else "skipped")

    return results


#: A pytest plugin, loaded with ``-p`` before the installed plugins, that times pytest-aiml's
#: own start-up work in a plain run: importing its plugin module and running its hooks
#: (``pytest_configure`` imports and registers its fixtures). The plugin module is
#: imported here first, so pytest's entry point then finds it with its hooks timed.
START_UP_PROBE = '''
import functools
import os
import time

_spent = 0.0
_started = time.perf_counter()
import pytest_aiml.plugin as _plugin  # noqa: E402
_spent += time.perf_counter() - _started


def _timed(function):
    @functools.wraps(function)
    def timed(*args):
        global _spent
        started = time.perf_counter()
        try:
            return function(*args)
        finally:
            _spent += time.perf_counter() - started
    return timed


for _name in [name for name in vars(_plugin) if name.startswith("pytest_")]:
    setattr(_plugin, _name, _timed(getattr(_plugin, _name)))


def pytest_unconfigure(config):
    with open(os.environ["AIML_START_UP_OUTPUT"], "w", encoding="utf-8") as stream:
        stream.write(repr(_spent))
'''


def _plugin_start_cost(empty: Path, config: Path, work: Path, timeout: float, *, runs: int) -> Measurement:
    """Time pytest-aiml's own work in a plain pytest run, without ``--aiml``: the median over ``runs`` runs.

    A difference between whole runs with and without the plugin is lost in the noise of
    a run of half a second, so a probe plugin times the import of pytest-aiml's plugin
    module and its hooks inside each run.
    """
    probe = work / "start-up-probe"
    probe.mkdir(exist_ok=True)
    (probe / "aiml_start_up_probe.py").write_text(START_UP_PROBE, encoding="utf-8")
    output = probe / "spent.txt"
    environment = measured_environment()
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(probe), environment.get("PYTHONPATH")]))
    environment["AIML_START_UP_OUTPUT"] = str(output)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", f"--rootdir={empty}", "-c", str(config),
               "-p", "no:cacheprovider", "-p", "aiml_start_up_probe", "--collect-only"]
    spent = []
    for _ in range(runs):
        output.unlink(missing_ok=True)
        completed = subprocess.run(command, cwd=empty, env=environment, capture_output=True, text=True, timeout=timeout, check=False)
        if completed.returncode != 5 or not output.is_file():
            last = (completed.stderr.strip().splitlines() or [""])[-1]
            return Measurement(seconds=None, exit_code=completed.returncode, note=f"the start-up probe failed: {last}")
        spent.append(float(output.read_text(encoding="utf-8")))
    median = statistics.median(spent)
    return Measurement(
        seconds=round(median, 4), exit_code=5,
        note=(
            f"{median * 1000:.1f} ms of the pytest start-up above: importing the plugin module and running its hooks, "
            f"median of {runs} plain {'run' if runs == 1 else 'runs'}"
        ),
    )


def _items_floor(work: Path, config: Path, cache: Path, codebase: Path, timeout: float) -> Measurement:
    """Time pytest running as many trivial passing tests as the warm run has items, with the same plugins.

    That is what pytest itself costs a warm run: its start-up and three phases per item.
    What the warm run takes beyond it is pytest-aiml's own work.
    """
    listing = subprocess.run(
        [*pytest_command(cache, config, codebase, "--collect-only")], cwd=codebase, env=measured_environment(),
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    count = sum(1 for line in listing.stdout.splitlines() if "::" in line)
    if not count:
        return Measurement(seconds=None, exit_code=None, note="the warm run's items could not be listed")
    floor = work / "items-floor"
    floor.mkdir(exist_ok=True)
    (floor / "test_items_floor.py").write_text(
        f"import pytest\n\n\n@pytest.mark.parametrize('index', range({count}))\ndef test_item(index):\n    assert index >= 0\n",
        encoding="utf-8",
    )
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", f"--rootdir={floor}", "-c", str(config),
        "-o", f"cache_dir={work / 'cache-items-floor'}",
    ]
    measurement = run_timed(command, floor, timeout)
    measurement.note = f"pytest running {count} trivial tests, as many as the warm run's items, same plugins"
    return measurement


def median_of(passes: Sequence[dict[str, Measurement]]) -> dict[str, Measurement]:
    """Keep, for each measurement, the run with the median time, and note the others' times."""
    combined: dict[str, Measurement] = {}
    for name in passes[0]:
        runs = [results[name] for results in passes]
        timed = sorted((run for run in runs if run.seconds is not None), key=lambda run: run.seconds or 0.0)
        if len(runs) == 1 or not timed:
            combined[name] = runs[0]
            continue
        chosen = timed[(len(timed) - 1) // 2]
        times = ", ".join(f"{run.seconds:.2f}" for run in timed)
        chosen.note = f"median of {len(timed)} runs ({times} s)" + (f"; {chosen.note}" if chosen.note else "")
        combined[name] = chosen
    baseline = combined["ast_parse"].seconds
    for name, measurement in combined.items():
        # The plugin's start-up is a part of pytest's, in milliseconds: no ratio to the baseline.
        if baseline and measurement.seconds is not None and name != "plugin_start":
            measurement.ratio_to_ast_parse = round(measurement.seconds / baseline, 2)
    return combined


def evaluate_targets(results: dict[str, Measurement]) -> list[dict[str, Any]]:
    """Return each target with its measured ratio and whether it is met (None when not measured)."""
    evaluated = []
    for name, numerator, denominator, comparison, limit in TARGETS:
        missing = Measurement(seconds=None, exit_code=None)
        top = results.get(numerator, missing).seconds
        if denominator is None:
            # An absolute target, in milliseconds.
            value = round(top * 1000, 1) if top is not None else None
        else:
            bottom = results.get(denominator, missing).seconds
            value = round(top / bottom, 2) if top is not None and bottom else None
        if value is None:
            met = None
        elif comparison == "<=":
            met = value <= limit
        else:
            met = value >= limit
        evaluated.append({"target": name, "value": value, "comparison": comparison, "limit": limit, "met": met})
    return evaluated


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for distribution in ("pytest-aiml", "pytest", "libcst", "pytest-xdist", "bandit"):
        try:
            found[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            found[distribution] = None
    return found


def source_revision() -> str | None:
    """Return ``git describe --always --dirty`` of the pytest-aiml checkout, or None outside one."""
    spec = importlib.util.find_spec("pytest_aiml")
    if spec is None or spec.origin is None or shutil.which("git") is None:
        return None
    try:
        completed = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=Path(spec.origin).parent, capture_output=True, text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() or None if completed.returncode == 0 else None


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def format_table(results: dict[str, Measurement], targets: list[dict[str, Any]]) -> str:
    labels = {
        "ast_parse": "ast.parse (baseline)", "cold": "pytest --aiml-only, cold", "warm": "warm (same cache)",
        "one_file_changed": "one file changed", "cold_n2": "cold, -n 2", "bandit": "bandit -r -q",
        "pytest_start": "pytest start-up", "cold_one_process": "cold, --aiml-jobs=1",
        "pytest_items": "pytest, as many items", "plugin_start": "plugin start-up",
    }
    rows = [f"{'measurement':<28}{'seconds':>10}{'x ast.parse':>13}{'exit':>6}  note"]
    for key, measurement in results.items():
        if measurement.seconds is None:
            seconds = "-"
        else:
            seconds = f"{measurement.seconds:.4f}" if measurement.seconds < 0.1 else f"{measurement.seconds:.2f}"
        ratio = f"{measurement.ratio_to_ast_parse:.2f}" if measurement.ratio_to_ast_parse is not None else "-"
        code = "-" if measurement.exit_code is None else str(measurement.exit_code)
        rows.append(f"{labels.get(key, key):<28}{seconds:>10}{ratio:>13}{code:>6}  {measurement.note}")
    rows.append("")
    width = max(len("target"), *(len(target["target"]) for target in targets)) + 2
    rows.append(f"{'target':<{width}}{'value':>8}  {'limit':<10}met")
    for target in targets:
        value = "-" if target["value"] is None else f"{target['value']:.2f}"
        met = {True: "yes", False: "no", None: "not measured"}[target["met"]]
        rows.append(f"{target['target']:<{width}}{value:>8}  {target['comparison']} {target['limit']:<7}{met}")
    return "\n".join(rows)


def copy_codebase(source: Path, destination: Path) -> None:
    shutil.copytree(source, destination, ignore=lambda _, names: [name for name in names if name in SKIPPED_FOLDERS])


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_benchmark.py",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 when every command ran (findings included), 1 when a command failed or timed out.",
    )
    parser.add_argument("directory", nargs="?", type=Path, help="codebase to measure (default: a generated one)")
    parser.add_argument("--files", type=int, default=DEFAULT_FILES, help=f"Python files to generate (default: {DEFAULT_FILES})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated codebase (default: 0)")
    parser.add_argument("--quick", action="store_true", help=f"generate only {QUICK_FILES} files and skip Bandit")
    parser.add_argument("--output", type=Path, help="JSON record to write (default: benchmark-<UTC time>.json)")
    parser.add_argument("--name", help="name of the codebase in the record (default: the folder name or 'synthetic')")
    parser.add_argument("--timeout", type=float, default=1800.0, help="limit for each command, in seconds (default: 1800)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder and print its path")
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N",
        help="take every measurement N times, each cold run on a fresh cache, and report the median (default: 1)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    files = QUICK_FILES if arguments.quick else arguments.files
    if arguments.directory is not None and not arguments.directory.is_dir():
        print(f"run_benchmark.py: error: {arguments.directory} is not a directory", file=sys.stderr)
        return 2
    if arguments.repeat < 1:
        print(f"run_benchmark.py: error: --repeat must be 1 or more, not {arguments.repeat}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="aiml-benchmark-"))
    try:
        codebase = work / "codebase"
        if arguments.directory is None:
            generate_codebase(codebase, files=files, seed=arguments.seed)
            description: dict[str, Any] = {"name": arguments.name or "synthetic", "generated": {"files": files, "seed": arguments.seed}}
        else:
            copy_codebase(arguments.directory.resolve(), codebase)
            description = {"name": arguments.name or arguments.directory.resolve().name, "path": str(arguments.directory.resolve())}
        description.update(asdict(measure_codebase(python_files(codebase))))
        started = dt.datetime.now(dt.timezone.utc)
        passes = []
        for attempt in range(arguments.repeat):
            folder = work / f"pass-{attempt + 1}"
            folder.mkdir()
            passes.append(run_benchmark(
                codebase, folder, timeout=arguments.timeout, use_bandit=not arguments.quick,
                start_up_runs=QUICK_START_UP_RUNS if arguments.quick else START_UP_RUNS,
            ))
        results = median_of(passes)
        targets = evaluate_targets(results)
        record = {
            "date": started.isoformat(timespec="seconds"),
            "machine": machine(),
            "versions": versions(),
            "pytest_aiml_revision": source_revision(),
            "codebase": description,
            "repeat": arguments.repeat,
            "measurements": {name: asdict(measurement) for name, measurement in results.items()},
            "targets": targets,
        }
        output = arguments.output or Path(f"benchmark-{started:%Y%m%dT%H%M%SZ}.json")
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(
            f"{description['name']}: {description['python_files']} Python files, {description['lines']} lines, "
            f"{description['bytes'] / 1e6:.1f} MB; {machine()['cpu_count']} CPUs, Python {platform.python_version()}"
        )
        print(format_table(results, targets))
        if arguments.quick:
            print("--quick is a smoke test: on so few files, start-up outweighs the scan, and the targets mean little")
        print(f"record written to {output}")
        # Exit status 5 (nothing collected) is the expected outcome of the start-up measurement.
        expected = {name: (None, 0, 1, 5) if name in ("pytest_start", "plugin_start") else (None, 0, 1) for name in results}
        failed = [
            name for name, measurement in results.items()
            if measurement.exit_code not in expected[name] or "timed out" in measurement.note
        ]
        return 1 if failed else 0
    finally:
        if arguments.keep:
            print(f"work folder kept at {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
