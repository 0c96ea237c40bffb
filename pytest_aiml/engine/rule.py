"""The rule contract: metadata, examples and the two kinds of rule.

A rule carries its own documentation (message, impact, fix, effort) and its own
``VALID`` / ``INVALID`` examples; the test suite runs the examples and the pages
under ``docs/rules/`` are generated from the same class, so neither can drift.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import libcst as cst

    from pytest_aiml.engine.ast_facts import AstFacts
    from pytest_aiml.engine.context import ModuleContext
    from pytest_aiml.engine.findings import Finding
    from pytest_aiml.engine.inventory import Inventory
    from pytest_aiml.fixes.fixer import Fixer


class Category(str, enum.Enum):
    """The report schema's recommendation categories."""

    MLOPS = "mlops"
    SERVING = "serving"
    TRAINING = "training"
    MONITORING = "monitoring"
    SECURITY = "security"


class Priority(str, enum.Enum):
    """The report schema's priorities, most severe first."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Return 0 for critical up to 3 for low, so that lower is more severe."""
        return list(Priority).index(self)


class Effort(str, enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Scope(str, enum.Enum):
    """The unit one generated item of the rule covers."""

    FILE = "file"
    REPO = "repo"
    ARTIFACT = "artifact"
    DATA = "data"
    #: Checks of what the repository declares in ``[tool.pytest-aiml]``: models, preprocessing.
    DECLARED = "declared"


@dataclass(frozen=True, slots=True)
class Example:
    """A source example of a rule.

    File rules take ``source`` as the content of ``path``, with ``files`` as the rest
    of the repository. Repository rules take ``files``, a small repository given as
    relative path -> content. Artifact rules inspect the file ``path`` of ``files``,
    whose content may be bytes. An ``INVALID`` example may name the lines the rule
    must report.
    """

    source: str = ""
    path: str = "example.py"
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    lines: tuple[int, ...] = ()
    #: For a rule with a ``fixer``: ``source`` exactly as ``--aiml-fix`` rewrites it. The
    #: suite checks that the fix yields it, that it has no finding of the rule left, that
    #: only the reported lines changed, and that fixing it again changes nothing.
    fixed: str | None = None


CODE_PATTERN = re.compile(r"^AIML\d{3}$")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class Rule:
    """Metadata shared by every rule; subclasses add the check itself."""

    code: ClassVar[str]
    slug: ClassVar[str]
    category: ClassVar[Category]
    priority: ClassVar[Priority]
    scope: ClassVar[Scope]
    #: One line, shown after ``path:line:col CODE``.
    message: ClassVar[str]
    #: Why it matters: becomes the recommendation's ``impact``.
    impact: ClassVar[str]
    #: The remedy: it becomes the recommendation's ``fix`` and ends every failure.
    fix: ClassVar[str]
    effort: ClassVar[Effort]
    #: The anti-pattern of the original specification this rule checks, word for word.
    anti_pattern: ClassVar[str | None] = None
    #: The ML code smells of ``catalog.ML_SMELLS`` this rule checks, by their catalog names.
    smells: ClassVar[tuple[str, ...]] = ()
    VALID: ClassVar[tuple[Example, ...]] = ()
    INVALID: ClassVar[tuple[Example, ...]] = ()

    @classmethod
    def title(cls) -> str:
        return f"{cls.code} {cls.slug}"


class FileRule(Rule):
    """A rule checked on each Python source (and notebook) by one batched libcst traversal.

    Subclasses define libcst ``visit_*`` / ``leave_*`` methods and call
    :meth:`report`. The traversal (``engine.walk``) finds those methods by their names,
    so the class needs no libcst base, and importing a rule does not import libcst. ``prefilter`` lists text fragments of which a file must contain
    at least one to be parsed for this rule at all; an empty tuple means every file.
    """

    scope: ClassVar[Scope] = Scope.FILE
    prefilter: ClassVar[tuple[str, ...]] = ()
    #: Serving- and production-oriented rules leave test modules alone.
    applies_to_tests: ClassVar[bool] = True
    #: The codemod that rewrites this rule's findings under ``--aiml-fix``, for rules whose
    #: fix is safe and mechanical; ``None`` for the rest. It receives each node the rule
    #: passed to :meth:`report`. See ``pytest_aiml.fixes``.
    fixer: ClassVar[type[Fixer] | None] = None

    def __init__(self, context: ModuleContext) -> None:
        self.context = context

    def report(self, node: cst.CSTNode, message: str | None = None) -> None:
        self.context.report(self.code, node, message or self.message)

    @classmethod
    def matches_text(cls, text: str) -> bool:
        return not cls.prefilter or any(fragment in text for fragment in cls.prefilter)

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        """Tell, cheaply, whether the rule can report anything on this file; False skips its parse.

        The default is the text pre-filter; a rule that needs a particular kind of
        module (a serving path) can narrow it further.
        """
        return cls.matches_text(text)

    #: Set by rules that override :meth:`candidate`, so that files only they apply to get an ``ast`` parse first.
    has_candidate_check: ClassVar[bool] = False

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        """Tell, from CPython's ``ast`` of the file, whether the rule can report anything on it.

        Checked after the text pre-filter and before libcst's parse. It must be true for
        every file the rule could report on: a rule that returns False is not run on the
        file, and a file no rule remains for is not parsed by libcst at all.
        """
        return True


class ArtifactRule(Rule):
    """One check of the artifact inspection (safety, versioning, validity, documentation) as a rule."""

    scope: ClassVar[Scope] = Scope.ARTIFACT
    #: The name of the check in ``ArtifactInspection.checks``.
    check: ClassVar[str]


class DeclaredRule(Rule):
    """A check of something the repository declares in its configuration (a model, a function).

    Its examples are small repositories (``Example.files`` with a ``pyproject.toml``)
    where that is cheap; checks that need real models name the tests that build them
    in ``example_tests`` instead.
    """

    scope: ClassVar[Scope] = Scope.DECLARED
    example_tests: ClassVar[str | None] = None


class RepoRule(Rule):
    """A rule checked once per repository, on the inventory rather than on every file again."""

    scope: ClassVar[Scope] = Scope.REPO

    def check(self, inventory: Inventory) -> Iterable[Finding]:
        raise NotImplementedError
