"""The two catalogs the rules are measured against.

``ANTI_PATTERNS`` is the anti-pattern list of the original specification, by
priority, word for word: a rule names the one it checks in ``anti_pattern``.
``ML_SMELLS`` is the catalog of 22 ML-specific code smells of Zhang, Cruz and van
Deursen (2022, "Code Smells for Machine Learning Applications"): a rule names the
smells it checks in ``smells``. The generated rule index maps both to rules.
"""

from __future__ import annotations

ANTI_PATTERNS: dict[str, tuple[str, ...]] = {
    "critical": (
        "No model versioning",
        "Training-serving skew",
        "Hardcoded model paths",
        "No input validation",
        "Prompt injection vulnerability (LLM)",
        "PII in training data without handling",
    ),
    "high": (
        "No experiment tracking",
        "Missing model monitoring",
        "No A/B testing infrastructure",
        "Manual deployment process",
        "No fallback model",
        "GPU underutilization",
    ),
    "medium": (
        "No feature store",
        "Missing data validation",
        "No model documentation",
        "Inconsistent preprocessing",
        "No cost tracking for inference",
    ),
    "low": (
        "Jupyter notebooks in production",
        "Missing unit tests",
        "No load testing",
        "Outdated dependencies",
    ),
}

ALL_ANTI_PATTERNS: tuple[str, ...] = tuple(name for names in ANTI_PATTERNS.values() for name in names)

ML_SMELLS: tuple[str, ...] = (
    "Unnecessary Iteration",
    "NaN Equivalence Comparison Misused",
    "Chain Indexing",
    "Columns and DataType Not Explicitly Set",
    "Empty Column Misinitialization",
    "Merge API Parameter Not Explicitly Set",
    "In-Place APIs Misused",
    "Dataframe Conversion API Misused",
    "Matrix Multiplication API Misused",
    "No Scaling Before Scaling-sensitive Operation",
    "Hyperparameter not Explicitly Set",
    "Memory not Freed",
    "Deterministic Algorithm Option Not Used",
    "Randomness Uncontrolled",
    "Missing the Mask of Invalid Value",
    "Broadcasting Feature Not Used",
    "TensorArray Not Used",
    "Training / Evaluation Mode Improper Toggling",
    "Pytorch Call Method Misused",
    "Gradients Not Cleared before Backward Propagation",
    "Data Leakage",
    "Threshold-Dependent Validation",
)
