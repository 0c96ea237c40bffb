"""Reading pinned versions from dependency files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_aiml.engine.dependencies import collect_pins, is_development_file, may_run_below
from pytest_aiml.engine.discovery import discover
from pytest_aiml.engine.inventory import build_inventory


def _pins(tmp_path: Path, files: dict[str, str]):
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    return collect_pins(discover(tmp_path))


@pytest.mark.parametrize(
    ("files", "old_torch_possible"),
    [
        ({}, True),
        ({"requirements.txt": "torch\n"}, True),
        ({"requirements.txt": "torch==2.1.2\n"}, True),
        ({"requirements.txt": "torch==2.6.0\n"}, False),
        ({"requirements.txt": "torch>=2.6,<3\n"}, False),
        ({"requirements.txt": "torch>=2.0\n"}, True),
        ({"requirements.txt": "torch>=2.0 ; python_version > '3.8'  # cpu\n"}, True),
        ({"pyproject.toml": '[project]\ndependencies = ["torch>=2.7"]\n'}, False),
        ({"pyproject.toml": '[tool.poetry.dependencies]\ntorch = "^2.4"\n'}, True),
        ({"pyproject.toml": '[project]\ndependencies = ["torch>=2.0"]\n', "poetry.lock": '[[package]]\nname = "torch"\nversion = "2.7.1"\n'}, False),
        ({"environment.yml": "dependencies:\n  - pytorch=2.6.0\n  - pip:\n    - torch==2.2.0\n"}, True),
    ],
)
def test_may_run_torch_below_2_6(tmp_path: Path, files: dict[str, str], old_torch_possible: bool) -> None:
    assert may_run_below(_pins(tmp_path, files), "torch", "2.6") is old_torch_possible


def test_invalid_pyproject_is_skipped(tmp_path: Path) -> None:
    pins = _pins(tmp_path, {"pyproject.toml": "[project\n", "requirements.txt": "Torch==2.6.0\n"})
    assert [pin.specifier for pin in pins["torch"]] == ["==2.6.0"]


@pytest.mark.parametrize(
    ("specifier", "old_torch_possible"),
    [
        ("torch<2.6", True),
        ("torch<2.6.0", True),
        ("torch<=2.5.1", True),
        ("torch==2.5.*", True),
        ("torch~=2.4.0", True),
        ("torch>=2.0,<2.6", True),
        ("torch<2.7", True),
        ("torch<=2.6", True),
        ("torch==2.6.*", False),
        ("torch~=2.6", False),
        ("torch>=2.6,<2.8", False),
        ("torch>=2.6,!=2.6.1", False),
    ],
)
def test_upper_bound_decides(tmp_path: Path, specifier: str, old_torch_possible: bool) -> None:
    assert may_run_below(_pins(tmp_path, {"requirements.txt": specifier + "\n"}), "torch", "2.6") is old_torch_possible


@pytest.mark.parametrize(
    ("version", "old_torch_possible"),
    [("~2.4", True), ("~2.6", False), ("^2.6", False), ("^2.4", True)],
)
def test_poetry_tilde_and_caret_bounds(tmp_path: Path, version: str, old_torch_possible: bool) -> None:
    pins = _pins(tmp_path, {"pyproject.toml": f'[tool.poetry.dependencies]\ntorch = "{version}"\n'})
    assert may_run_below(pins, "torch", "2.6") is old_torch_possible


def _nested_pins(tmp_path: Path, files: dict[str, str]):
    for name, content in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return collect_pins(discover(tmp_path))


NESTED_PROJECTS = {
    "requirements.txt": "torch>=2.7\n",
    "legacy/requirements.txt": "torch<2.6\n",
    "legacy/tools/requirements.txt": "numpy\n",
    "modern/requirements.txt": "torch>=2.7.1\n",
    "modern/old_demo/requirements.txt": "torch==2.1.0\n",
}


@pytest.mark.parametrize(
    ("path", "old_torch_possible"),
    [
        ("legacy/train.py", True),
        # The tools folder's requirements do not name torch, so the legacy folder's apply.
        ("legacy/tools/convert.py", True),
        ("modern/train.py", False),
        ("modern/old_demo/run.py", True),
        ("scripts/eval.py", False),
        ("setup_env.py", False),
        (None, False),
    ],
)
def test_nearest_folder_pins_apply(tmp_path: Path, path: str | None, old_torch_possible: bool) -> None:
    pins = _nested_pins(tmp_path, NESTED_PROJECTS)
    assert may_run_below(pins, "torch", "2.6", path) is old_torch_possible


def test_sibling_project_pins_do_not_apply(tmp_path: Path) -> None:
    pins = _nested_pins(tmp_path, {"vision/requirements.txt": "torch>=2.7.1\n"})
    assert may_run_below(pins, "torch", "2.6", "vision/train.py") is False
    assert may_run_below(pins, "torch", "2.6", "audio/train.py") is True


def test_requirements_folder_describes_parent(tmp_path: Path) -> None:
    pins = _nested_pins(
        tmp_path,
        {"requirements/requirements-prod.txt": "torch>=2.6\n", "service/docker/requirements.txt": "torch<2.6\n"},
    )
    assert may_run_below(pins, "torch", "2.6", "src/model.py") is False
    assert may_run_below(pins, "torch", "2.6", "service/app.py") is True


def test_any_environment_may_run_old_version(tmp_path: Path) -> None:
    # A type checker's exact pin does not stop the package's own requirements from admitting torch 2.1.
    pins = _nested_pins(
        tmp_path,
        {"requirements/typing.txt": "torch==2.9.1\n", "requirements/pytorch/base.txt": "torch >=2.1.0, <2.10.0\n"},
    )
    assert may_run_below(pins, "torch", "2.6", "src/lightning/fabric/utilities/cloud_io.py") is True
    assert may_run_below(pins, "torch", "2.1") is False


def test_every_environment_recent_is_not_old(tmp_path: Path) -> None:
    files = {"requirements.txt": "torch==2.7.1\n", "pyproject.toml": '[project]\ndependencies = ["torch>=2.6"]\n'}
    assert may_run_below(_pins(tmp_path, files), "torch", "2.6") is False


UV_LOCK = '[[package]]\nname = "torch"\nversion = "2.7.1"\n'


def test_lock_file_speaks_for_its_pyproject(tmp_path: Path) -> None:
    files = {"pyproject.toml": '[project]\ndependencies = ["torch>=2.0"]\n', "uv.lock": UV_LOCK}
    assert may_run_below(_pins(tmp_path, files), "torch", "2.6") is False


def test_lock_file_skips_docker_requirements(tmp_path: Path) -> None:
    pins = _nested_pins(tmp_path, {"uv.lock": UV_LOCK, "requirements/docker.txt": "torch==2.1.0\n"})
    assert may_run_below(pins, "torch", "2.6") is True


@pytest.mark.parametrize(
    ("source", "development"),
    [
        ("requirements-dev.txt", True),
        ("requirements/test.txt", True),
        ("requirements/pytorch/docs.txt", True),
        ("dev-requirements.txt", True),
        ("requirements/typing.txt", True),
        ("requirements/linting.txt", True),
        ("requirements/docs/base.txt", True),
        ("docs/requirements.txt", True),
        ("requirements/dev/extra.txt", True),
        ("requirements.txt", False),
        ("services/devices/requirements.txt", False),
        ("requirements/prod.txt", False),
        ("requirements/devices.txt", False),
        ("pyproject.toml", False),
    ],
)
def test_development_files_by_name(source: str, development: bool) -> None:
    assert is_development_file(source) is development


def test_development_files_name_no_framework(tmp_path: Path) -> None:
    for relative, content in {"requirements/base.txt": "torch>=2.1\n", "requirements/test.txt": "huggingface-hub\n"}.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(content)
    inventory = build_inventory(discover(tmp_path))
    assert "huggingface-hub" in inventory.pins
    assert inventory.dependency_labels("framework") == ["pytorch"]
    assert inventory.dependency_labels("llm_provider") == []


def test_hashed_pins_are_read(tmp_path: Path) -> None:
    compiled = (
        "# pip-compile --generate-hashes requirements/base.in\n"
        "torch==2.1.0 \\\n    --hash=sha256:1111\n    --hash=sha256:2222\n"
        "mlflow==2.9.1 --hash=sha256:3333\n"
    )
    pins = _nested_pins(tmp_path, {"requirements/base.txt": compiled})
    assert [pin.specifier for pin in pins["torch"]] == ["==2.1.0"]
    assert [pin.specifier for pin in pins["mlflow"]] == ["==2.9.1"]


def test_pins_after_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes("torch==2.1.0\n".encode("utf-8-sig"))
    assert [pin.specifier for pin in collect_pins(discover(tmp_path))["torch"]] == ["==2.1.0"]


def test_development_groups_name_no_framework(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = ["torch>=2.1"]\n'
        '[project.optional-dependencies]\ntest = ["openai"]\nserve = ["anthropic"]\n'
        '[dependency-groups]\ndev = ["tensorflow"]\n'
        '[tool.poetry.group.docs.dependencies]\nkeras = "^3.0"\n'
    )
    inventory = build_inventory(discover(tmp_path))
    assert {pin.group for pins in inventory.pins.values() for pin in pins} == {"", "test", "serve", "dev", "docs"}
    assert inventory.dependency_labels("framework") == ["pytorch"]
    assert inventory.dependency_labels("llm_provider") == ["anthropic"]
