"""Writing fixed files and fixing a folder: atomic writes, files changed meanwhile, encodings, the summary."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.registry import builtin_rules
from pytest_aiml.fixes import SkipFile, diff_text, every_finding, fix_files, summary_lines
from pytest_aiml.fixes.write import WriteStatus, unified_diff, write_fixed

AIML101 = builtin_rules().get("AIML101")
UNSAFE = "import torch\nstate = torch.load(path)\n"
FIXED = "import torch\nstate = torch.load(path, weights_only=True)\n"


def test_write_replaces_file_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "train.py"
    target.write_text(UNSAFE)
    target.chmod(0o754)
    status, reason = write_fixed(target, UNSAFE.encode(), FIXED)
    assert (status, reason) == (WriteStatus.WRITTEN, "")
    assert target.read_text() == FIXED
    assert stat.S_IMODE(target.stat().st_mode) == 0o754
    assert [path.name for path in tmp_path.iterdir()] == ["train.py"]


def test_write_refuses_file_changed_on_disk(tmp_path: Path) -> None:
    target = tmp_path / "train.py"
    target.write_text(UNSAFE + "# edited meanwhile\n")
    status, reason = write_fixed(target, UNSAFE.encode(), FIXED)
    assert status is WriteStatus.CHANGED_ON_DISK
    assert "changed on disk" in reason
    assert target.read_text() == UNSAFE + "# edited meanwhile\n"


def test_write_through_symlink_replaces_target(tmp_path: Path) -> None:
    real = tmp_path / "real.py"
    real.write_text(UNSAFE)
    link = tmp_path / "link.py"
    link.symlink_to(real)
    assert write_fixed(link, UNSAFE.encode(), FIXED)[0] is WriteStatus.WRITTEN
    assert link.is_symlink()
    assert real.read_text() == FIXED


def test_unified_diff_names_both_sides() -> None:
    diff = unified_diff("src/train.py", UNSAFE, FIXED)
    assert diff.startswith("--- a/src/train.py\n+++ b/src/train.py\n")
    assert "-state = torch.load(path)\n+state = torch.load(path, weights_only=True)\n" in diff


def _repo(tmp_path: Path, files: dict[str, bytes]) -> Path:
    for relative, content in files.items():
        (tmp_path / relative).write_bytes(content)
    return tmp_path


def test_fix_files_writes_and_summarises(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": UNSAFE.encode(), "b.py": b"import numpy as np\nx = np.load(p, allow_pickle=True)\n"})
    report = fix_files(root, ["a.py", "b.py"], [AIML101], RepoContext(), lambda path, text: every_finding, write=True)
    assert (root / "a.py").read_text() == FIXED
    lines = summary_lines(report)
    assert lines[0] == "fixed 1 finding in 1 file (AIML101: 1)"
    assert lines[1] == "  a.py: AIML101: 1"
    assert lines[2] == "left for a person (no safe mechanical fix):"
    assert lines[3].startswith("  b.py:2:5 AIML101: numpy.load(allow_pickle=True) is not rewritten")


def test_fix_files_diff_writes_nothing(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": UNSAFE.encode()})
    report = fix_files(root, ["a.py"], [AIML101], RepoContext(), lambda path, text: every_finding, write=False)
    assert (root / "a.py").read_text() == UNSAFE
    assert summary_lines(report)[0] == "would fix 1 finding in 1 file (AIML101: 1)"
    assert diff_text(report) == unified_diff("a.py", UNSAFE, FIXED)


def test_fix_files_skips_other_encodings_and_skipped_files(tmp_path: Path) -> None:
    latin = "# -*- coding: latin-1 -*-\n# caf\xe9\n".encode("latin-1") + UNSAFE.encode()
    root = _repo(tmp_path, {"latin.py": latin, "skipped.py": UNSAFE.encode()})

    def select_for(path: str, text: str):
        if path == "skipped.py":
            raise SkipFile("has an invalid inline waiver")
        return every_finding

    report = fix_files(root, ["latin.py", "skipped.py"], [AIML101], RepoContext(), select_for, write=True)
    assert (root / "latin.py").read_bytes() == latin
    assert (root / "skipped.py").read_text() == UNSAFE
    assert report.skipped == [("latin.py", "is not UTF-8"), ("skipped.py", "has an invalid inline waiver")]
    assert "not fixed: latin.py is not UTF-8" in summary_lines(report)


def test_fix_files_reports_file_changed_meanwhile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _repo(tmp_path, {"a.py": UNSAFE.encode()})
    from pytest_aiml.fixes import batch

    original_fix_source = batch.fix_source

    def edit_during_fix(*args, **kwargs):
        result = original_fix_source(*args, **kwargs)
        (root / "a.py").write_text(UNSAFE + "# saved by the editor\n")
        return result

    monkeypatch.setattr(batch, "fix_source", edit_during_fix)
    report = fix_files(root, ["a.py"], [AIML101], RepoContext(), lambda path, text: every_finding, write=True)
    assert (root / "a.py").read_text().endswith("# saved by the editor\n")
    assert report.done() == []
    assert "not written: a.py: it changed on disk after it was read; run the fix again" in summary_lines(report)


def test_fix_files_keeps_bom_and_crlf(tmp_path: Path) -> None:
    content = b"\xef\xbb\xbfimport torch\r\nstate = torch.load(path)\r\n"
    root = _repo(tmp_path, {"a.py": content})
    fix_files(root, ["a.py"], [AIML101], RepoContext(), lambda path, text: every_finding, write=True)
    assert (root / "a.py").read_bytes() == b"\xef\xbb\xbfimport torch\r\nstate = torch.load(path, weights_only=True)\r\n"
