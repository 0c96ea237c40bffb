"""Listing and classifying repository files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_aiml.engine.discovery import FileKind, classify, discover, glob_matches, is_test_path


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("src/train.py", FileKind.PYTHON),
        ("notebooks/eda.ipynb", FileKind.NOTEBOOK),
        ("models/churn_v2.pt", FileKind.MODEL),
        ("models/encoder.onnx", FileKind.MODEL),
        ("data/train.csv", FileKind.DATA),
        ("requirements-dev.txt", FileKind.DEPENDENCIES),
        ("requirements/prod.txt", FileKind.DEPENDENCIES),
        ("requirements/pytorch/base.txt", FileKind.DEPENDENCIES),
        ("services/api/requirements.d/serving.in", FileKind.DEPENDENCIES),
        ("requirements/README.md", FileKind.OTHER),
        ("data/labels.txt", FileKind.DATA),
        ("pyproject.toml", FileKind.DEPENDENCIES),
        ("poetry.lock", FileKind.DEPENDENCIES),
        ("environment.yml", FileKind.DEPENDENCIES),
        (".github/workflows/ci.yml", FileKind.CI),
        (".gitlab-ci.yml", FileKind.CI),
        ("Jenkinsfile", FileKind.CI),
        ("Dockerfile", FileKind.DEPLOYMENT),
        ("deploy/k8s/service.yaml", FileKind.DEPLOYMENT),
        ("docs/index.md", FileKind.OTHER),
    ],
)
def test_classify(path: str, kind: FileKind) -> None:
    assert classify(path) == kind


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("notebooks/a.ipynb", "notebooks/**", True),
        ("notebooks/deep/a.ipynb", "notebooks/**", True),
        ("src/notebooks/a.ipynb", "notebooks/**", False),
        ("src/notebooks/a.ipynb", "**/notebooks/**", True),
        ("scratch/old.py", "scratch", True),
        ("src/scratch.py", "scratch", False),
        ("a/b/c.py", "a/*.py", False),
        ("a/c.py", "a/*.py", True),
        ("deep/x/legacy_model.py", "legacy_*.py", True),
        ("my_notebooks/a.ipynb", "notebooks/**", False),
    ],
)
def test_glob_matches(path: str, pattern: str, expected: bool) -> None:
    assert glob_matches(path, pattern) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [("tests/test_a.py", True), ("test_a.py", True), ("pkg/a_test.py", True), ("conftest.py", True),
     ("src/testing_utils.py", False), ("src/contest.py", False)],
)
def test_is_test_path(path: str, expected: bool) -> None:
    assert is_test_path(path) is expected


def _write(root: Path, *paths: str) -> None:
    for path in paths:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x = 1\n")


def test_walk_skips_environments_and_caches(tmp_path: Path) -> None:
    _write(tmp_path, "src/a.py", ".venv/lib/b.py", "node_modules/c.js", "build/d.py", "pkg/__pycache__/e.py", "f.py")
    assert discover(tmp_path).paths == ("f.py", "src/a.py")


def test_exclude_globs(tmp_path: Path) -> None:
    _write(tmp_path, "src/a.py", "scratch/b.py", "scratch/deep/c.py")
    assert discover(tmp_path, exclude=["scratch/**"]).paths == ("src/a.py",)


def test_git_listing_honours_gitignore(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    _write(tmp_path, "src/a.py", "generated/b.py", "untracked.py")
    (tmp_path / ".gitignore").write_text("generated/\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "src/a.py", ".gitignore"], check=True)
    assert discover(tmp_path).paths == (".gitignore", "src/a.py", "untracked.py")


def test_git_listing_of_subfolder_is_relative(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    _write(tmp_path, "outside.py", "inner/pkg/a.py")
    assert discover(tmp_path / "inner").paths == ("pkg/a.py",)
