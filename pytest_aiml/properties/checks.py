"""Run one property of one declared preprocessing function with Hypothesis.

:func:`run_property` generates inputs from the spec, checks the property on each,
lets Hypothesis shrink the first failure to a minimal input, and returns a
:class:`PropertyResult` rather than raising, so that a caller (the pytest
adapter, a CLI) decides how to report it::

    spec = parse_preprocessing_specs(table)[0]
    functions = resolve_spec_functions(spec, repository_root)
    settings = PropertySettings.for_spec(spec, environ=os.environ, database_dir=cache_dir / "hypothesis")
    for name in spec.properties:
        result = run_property(spec, name, functions.function, twin=functions.twin,
                              inverse=functions.inverse, settings=settings)
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import DeadlineExceeded, Flaky, HypothesisException

# NOTE: the strategies and comparisons import NumPy, so running any property needs
# NumPy even for text-only specs, while NumPy is only an optional dependency.
from pytest_aiml import strategies
from pytest_aiml.properties.invariants import (
    PROPERTY_CHECKS,
    CheckTarget,
    PropertyViolation,
    copy_input,
)
from pytest_aiml.properties.render import render_example, render_pair
from pytest_aiml.properties.spec import FrameInput, PreprocessingSpec, without_special_values

logger = logging.getLogger("pytest_aiml.properties")

DEFAULT_MAX_EXAMPLES = 100
# Hypothesis' own default of 200 ms suits unit tests; one preprocessing example
# may call the function once per batch row, on a shared CI runner.
DEFAULT_DEADLINE_MS = 1000.0

FAILURE_KINDS = ("violated", "raised", "deadline", "flaky", "hypothesis")
"""Values of :attr:`PropertyResult.failure_kind`."""

_CI_OFF_VALUES = ("", "0", "false", "no", "off")


class PropertyUnavailable(RuntimeError):
    """A property cannot run in this environment, for example a frame input without pandas."""


@dataclass(frozen=True, slots=True)
class PropertySettings:
    """Hypothesis settings for checking one property.

    ``deadline_ms`` ``None`` means no deadline. ``derandomize`` makes every run
    try the same inputs; Hypothesis then uses no example database, so
    ``database_dir`` is ignored. ``database_dir`` ``None`` also means no database.
    """

    max_examples: int = DEFAULT_MAX_EXAMPLES
    deadline_ms: float | None = DEFAULT_DEADLINE_MS
    derandomize: bool = False
    database_dir: Path | None = None

    @classmethod
    def for_spec(
        cls,
        spec: PreprocessingSpec,
        *,
        environ: Mapping[str, str],
        database_dir: Path | None,
        max_examples: int = DEFAULT_MAX_EXAMPLES,
        deadline_ms: float | None = DEFAULT_DEADLINE_MS,
    ) -> PropertySettings:
        """Combine run-wide defaults with the spec's ``max_examples`` and ``deadline``.

        ``derandomize`` follows :func:`derandomize_default` of ``environ``.
        """
        if spec.deadline_ms is False:
            deadline_ms = None
        elif spec.deadline_ms is not None:
            deadline_ms = spec.deadline_ms
        return cls(
            max_examples=spec.max_examples if spec.max_examples is not None else max_examples,
            deadline_ms=deadline_ms,
            derandomize=derandomize_default(environ),
            database_dir=database_dir,
        )


def derandomize_default(environ: Mapping[str, str]) -> bool:
    """Tell whether runs should be derandomized: true when ``CI`` is set.

    CI services set ``CI`` (GitHub Actions and GitLab CI set ``CI=true``), and a
    pre-merge check must give the same result when rerun. ``CI`` set to an empty
    string, ``0``, ``false``, ``no`` or ``off`` counts as unset.
    """
    value = environ.get("CI")
    return value is not None and value.strip().lower() not in _CI_OFF_VALUES


@dataclass(frozen=True, slots=True)
class PropertyResult:
    """Outcome of one property on one function.

    ``failure_kind`` is ``None`` when the property passed, else one of
    :data:`FAILURE_KINDS`: ``violated`` (an output broke the property), ``raised``
    (the function raised on a valid input), ``deadline`` (an example ran past the
    deadline), ``flaky`` (a failure did not repeat on the same input) or
    ``hypothesis`` (Hypothesis could not generate inputs, e.g. a failed health
    check). ``falsifying_example`` is the shrunk input as text. ``examples_run``
    counts the inputs tried, shrinking steps included.
    """

    function: str
    property_name: str
    passed: bool
    explanation: str = ""
    falsifying_example: str | None = None
    failure_kind: str | None = None
    examples_run: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the result as builtins: every field under its own name."""
        return {
            "function": self.function,
            "property": self.property_name,
            "passed": self.passed,
            "explanation": self.explanation,
            "falsifying_example": self.falsifying_example,
            "failure_kind": self.failure_kind,
            "examples_run": self.examples_run,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PropertyResult:
        """Rebuild a result from :meth:`to_dict` output (for example on the xdist controller)."""
        return cls(
            function=data["function"],
            property_name=data["property"],
            passed=data["passed"],
            explanation=data["explanation"],
            falsifying_example=data["falsifying_example"],
            failure_kind=data["failure_kind"],
            examples_run=data["examples_run"],
        )

    def describe(self) -> str:
        """Render a failure report: which property broke, how, and on which input."""
        if self.passed:
            return f"{self.function}: {self.property_name} passed ({self.examples_run} examples)"
        lines = [f"{self.function}: property {self.property_name!r} failed ({self.failure_kind})", self.explanation]
        if self.falsifying_example is not None:
            lines += ["Falsifying example (shrunk):", self.falsifying_example]
        return "\n".join(lines)


def unavailable_reason(spec: PreprocessingSpec) -> str | None:
    """Return why ``spec``'s properties cannot run here (a missing package), or ``None``."""
    if isinstance(spec.input, FrameInput) and importlib.util.find_spec("pandas") is None:
        return "frame inputs need pandas, which is not installed"
    return None


def database_directory(settings: PropertySettings, spec: PreprocessingSpec, property_name: str) -> Path | None:
    """Return the example database folder of one (function, property) pair, or ``None``.

    Each pair gets its own folder because Hypothesis keys saved examples by the
    test function's source, and every property runs through the same function here.
    """
    if settings.database_dir is None or settings.derandomize:
        return None
    digest = hashlib.sha256(f"{spec.function}\0{property_name}".encode()).hexdigest()[:16]
    return settings.database_dir / digest


def run_property(
    spec: PreprocessingSpec,
    property_name: str,
    function: Callable[..., Any],
    *,
    twin: Callable[..., Any] | None = None,
    inverse: Callable[..., Any] | None = None,
    settings: PropertySettings,
) -> PropertyResult:
    """Check ``property_name`` of ``function`` on inputs generated from ``spec``.

    ``twin`` is the serving implementation (required for ``matches``) and
    ``inverse`` the inverse function (required for ``inverse``). Raises
    :class:`ValueError` when ``spec`` does not declare the property or a required
    callable is missing, and :class:`PropertyUnavailable` when
    :func:`unavailable_reason` returns a reason.
    """
    if property_name not in spec.properties:
        raise ValueError(
            f"{spec.function} does not declare property {property_name!r}; declared: {', '.join(spec.properties)}"
        )
    for needed, callable_ in (("matches", twin), ("inverse", inverse)):
        if property_name == needed and callable_ is None:
            raise ValueError(f"property {needed!r} of {spec.function} needs the {needed}= callable")
    reason = unavailable_reason(spec)
    if reason:
        raise PropertyUnavailable(reason)

    target = CheckTarget(spec=spec, function=function, twin=twin, inverse=inverse)
    check = PROPERTY_CHECKS[property_name]
    recorder = _ExampleRecorder()

    def check_one_example(example: Any) -> None:
        recorder.record(example)
        check(target, example)

    test = hypothesis.given(_strategy_for(spec, property_name))(check_one_example)
    test = _hypothesis_settings(settings, database_directory(settings, spec, property_name))(test)
    logger.debug("checking %s of %s with %s", property_name, spec.function, settings)

    failure = _run_test(test, settings)
    if failure is None:
        result = PropertyResult(spec.function, property_name, passed=True, examples_run=recorder.count)
    else:
        failure_kind, explanation = failure
        result = PropertyResult(
            spec.function,
            property_name,
            passed=False,
            explanation=explanation,
            falsifying_example=recorder.render(pair=property_name == "monotonic"),
            failure_kind=failure_kind,
            examples_run=recorder.count,
        )
    logger.debug("%s of %s: %s", property_name, spec.function, "passed" if result.passed else result.explanation)
    return result


def _strategy_for(spec: PreprocessingSpec, property_name: str) -> Any:
    if property_name == "monotonic":
        return strategies.ordered_pairs(spec.input)
    if property_name == "finite":
        return strategies.inputs_from_spec(without_special_values(spec.input))
    return strategies.inputs_from_spec(spec.input)


def _hypothesis_settings(settings: PropertySettings, database_path: Path | None) -> hypothesis.settings:
    deadline = None if settings.deadline_ms is None else timedelta(milliseconds=settings.deadline_ms)
    database = None if database_path is None else DirectoryBasedExampleDatabase(database_path)
    return hypothesis.settings(
        max_examples=settings.max_examples,
        deadline=deadline,
        derandomize=settings.derandomize,
        database=database,
        # One shrunk failure per property is what the report shows.
        report_multiple_bugs=False,
        # The explain phase reruns failures only to annotate Hypothesis' own
        # report, which this module replaces with its own explanation.
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
        # Generation speed depends on the runner, and the user can only change it by
        # shrinking the declared dimensions, so slow generation is not a failure.
        suppress_health_check=(HealthCheck.too_slow,),
        print_blob=False,
        verbosity=Verbosity.quiet,
    )


def _run_test(test: Callable[[], None], settings: PropertySettings) -> tuple[str, str] | None:
    """Run the Hypothesis test and return ``(failure_kind, explanation)``, or ``None`` when it passed."""
    try:
        test()
    except PropertyViolation as violation:
        return violation.failure_kind, violation.explanation
    except DeadlineExceeded as error:
        return "deadline", (
            f"One example took {error.runtime.total_seconds() * 1000:.0f} ms, over the deadline of "
            f"{settings.deadline_ms:g} ms; raise `deadline` in the spec or make the function faster."
        )
    except Flaky as error:
        first = _first_violation(error)
        detail = f" The first failure was: {first}" if first else f" {error}"
        return "flaky", (
            "The check failed once and then passed on the same input, so the function depends on "
            f"something besides its input (global state, randomness or time).{detail}"
        )
    except HypothesisException as error:
        return "hypothesis", f"Hypothesis could not run the check: {type(error).__name__}: {error}"
    return None


def _first_violation(error: BaseException) -> str | None:
    for inner in getattr(error, "exceptions", ()):
        if isinstance(inner, PropertyViolation):
            return inner.explanation
        if isinstance(inner, DeadlineExceeded):
            return str(inner)
    return None


class _ExampleRecorder:
    """Keeps a copy of the latest example, which after a failure is the shrunk one.

    Hypothesis replays the minimal failing example last, so the latest example is
    the one to show. The copy protects it from a function that mutates its input.
    """

    __slots__ = ("count", "latest")

    def __init__(self) -> None:
        self.count = 0
        self.latest: Any = None

    def record(self, example: Any) -> None:
        self.count += 1
        self.latest = copy_input(example)

    def render(self, *, pair: bool) -> str | None:
        if self.count == 0:
            return None
        if pair:
            return render_pair(*self.latest)
        return render_example(self.latest)
