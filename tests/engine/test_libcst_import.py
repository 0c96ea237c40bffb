"""libcst is imported when the engine first uses it, not when the rules are imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess[str]:
    # A fresh interpreter, because this one imported libcst long ago.
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_importing_every_rule_imports_no_libcst() -> None:
    result = _run(
        """
        import sys
        from pytest_aiml.engine.registry import builtin_rules

        rules = builtin_rules()
        assert len(rules.file_rules()) > 40, len(rules)
        imported = sorted(name for name in sys.modules if name == "libcst" or name.startswith("libcst."))
        assert imported == [], imported
        """
    )
    assert result.returncode == 0, result.stderr


def test_first_read_imports_libcst() -> None:
    result = _run(
        """
        import sys
        import types
        from pytest_aiml.engine.libcst_import import cst, loaded, node_types

        assert not loaded()
        assert "libcst" not in sys.modules
        # pytest probes each name of a conftest.py for private attributes such as this one.
        assert getattr(cst, "_mock_name", None) is None
        assert not loaded(), "a probe for a private name imported libcst"
        module = cst.parse_module("x = 1\\n")
        assert loaded()
        assert type(cst) is types.ModuleType, "a plain module after the import"
        assert isinstance(module, sys.modules["libcst"].Module)
        assert cst.Name is sys.modules["libcst"].Name
        assert node_types("For", "While") == (cst.For, cst.While)
        """
    )
    assert result.returncode == 0, result.stderr
