"""pytest-aiml: ML engineering standards as pytest items."""

__version__ = "0.1.0"
