"""Errors the engine raises for bad user input."""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid value in the ``[tool.pytest-aiml]`` configuration.

    ``key`` is the dotted key as the user wrote it (``models.churn.onnx``), so the
    message can point at the exact line to fix; the pytest adapter turns this into
    a ``pytest.UsageError``.
    """

    def __init__(self, key: str, problem: str, fix: str = "") -> None:
        self.key = key
        self.problem = problem
        self.fix = fix
        # Command-line options are named as typed; everything else is a key of the table.
        text = f"{key}: {problem}" if key.startswith("--") else f"[tool.pytest-aiml] {key}: {problem}"
        if fix:
            text += f" ({fix})"
        super().__init__(text)
