"""Importing the functions that specs name, from the repository root."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.properties.resolve import resolve_function, resolve_spec_functions
from pytest_aiml.properties.spec import parse_preprocessing_specs

KEY = 'preprocessing."shop_features.scaling:standardize"'


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root with a small feature package, removed from sys.modules afterwards."""
    package = tmp_path / "shop_features"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "scaling.py").write_text(
        textwrap.dedent(
            """
            MEAN = 3.0

            def standardize(values):
                return values - MEAN

            def restore(values):
                return values + MEAN

            class Scaler:
                @staticmethod
                def transform(values):
                    return values * 2
            """
        )
    )
    (package / "broken.py").write_text("raise RuntimeError('missing environment variable FEATURE_STORE_URL')\n")
    for name in [name for name in sys.modules if name.startswith("shop_features")]:
        monkeypatch.delitem(sys.modules, name)
    yield tmp_path
    for name in [name for name in sys.modules if name.startswith("shop_features")]:
        del sys.modules[name]


def test_function_imported_from_root(repository):
    standardize = resolve_function("shop_features.scaling:standardize", repository, KEY)
    assert standardize(5.0) == 2.0


def test_dotted_attribute_path(repository):
    transform = resolve_function("shop_features.scaling:Scaler.transform", repository, KEY)
    assert transform(2) == 4


def test_root_removed_from_sys_path(repository):
    before = list(sys.path)
    resolve_function("shop_features.scaling:standardize", repository, KEY)
    assert sys.path == before


def test_missing_module_names_key_and_value(repository):
    with pytest.raises(ConfigError) as caught:
        resolve_function("shop_features.missing:standardize", repository, KEY)
    assert caught.value.key == KEY
    assert "'shop_features.missing:standardize'" in caught.value.problem
    assert str(repository) in caught.value.fix


def test_module_raising_on_import_reported(repository):
    with pytest.raises(ConfigError) as caught:
        resolve_function("shop_features.broken:standardize", repository, KEY)
    assert caught.value.key == KEY
    assert "raised RuntimeError: missing environment variable FEATURE_STORE_URL" in caught.value.problem


def test_missing_attribute_names_owner(repository):
    with pytest.raises(ConfigError) as caught:
        resolve_function("shop_features.scaling:Scaler.fit", repository, KEY)
    assert caught.value.problem == (
        "'shop_features.scaling:Scaler.fit' not found: 'shop_features.scaling.Scaler' has no attribute 'fit'"
    )


def test_non_callable_rejected(repository):
    with pytest.raises(ConfigError) as caught:
        resolve_function("shop_features.scaling:MEAN", repository, KEY)
    assert caught.value.problem == "'shop_features.scaling:MEAN' is a float, not a function"


def test_malformed_reference_rejected(repository):
    with pytest.raises(ConfigError) as caught:
        resolve_function("shop_features.scaling.standardize", repository, KEY)
    assert caught.value.key == KEY


def test_spec_functions_resolved_with_their_keys(repository):
    (spec,) = parse_preprocessing_specs(
        {
            "shop_features.scaling:standardize": {
                "input": {"kind": "scalar"},
                "properties": ["deterministic"],
                "matches": "shop_features.scaling:standardize",
                "inverse": "shop_features.scaling:restore",
            }
        }
    )
    functions = resolve_spec_functions(spec, repository)
    assert functions.function(4.0) == 1.0
    assert functions.twin(4.0) == 1.0
    assert functions.inverse(1.0) == 4.0


def test_bad_twin_error_names_matches_key(repository):
    (spec,) = parse_preprocessing_specs(
        {
            "shop_features.scaling:standardize": {
                "input": {"kind": "scalar"},
                "properties": ["deterministic"],
                "matches": "shop_features.serving:standardize",
            }
        }
    )
    with pytest.raises(ConfigError) as caught:
        resolve_spec_functions(spec, repository)
    assert caught.value.key == f"{KEY}.matches"
