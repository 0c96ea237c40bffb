"""Whether a model artifact is documented: a model card beside it or a docs mention."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from pytest_aiml.artifacts.repository_context import RepositoryContext
from pytest_aiml.artifacts.versioning import MODEL_CARD_NAMES


@dataclass(frozen=True, slots=True)
class DocumentationEvidence:
    """Location of the artifact's documentation; ``source`` is None when there is none."""

    source: str | None


def find_documentation(rel_path: str, context: RepositoryContext) -> DocumentationEvidence:
    """Find a model card in the artifact's folder, else a document that names the file.

    A model card is one of ``MODEL_CARD_NAMES`` or ``<stem>.md``. A mention is the
    file name or the repository-relative path in any Markdown, reST or text file,
    compared case-insensitively.
    """
    posix = PurePosixPath(rel_path)
    folder = "" if str(posix.parent) == "." else f"{posix.parent}/"
    for name in MODEL_CARD_NAMES + (f"{posix.name.split('.', 1)[0]}.md",):
        candidate = f"{folder}{name}"
        # The repository's top-level README documents the repository, not this file.
        if candidate in context.files and folder:
            return DocumentationEvidence(f"model card {candidate}")
    file_name = posix.name.lower()
    for document, text in context.documents:
        if file_name in text or rel_path.lower() in text:
            return DocumentationEvidence(f"mentioned in {document}")
    return DocumentationEvidence(None)
