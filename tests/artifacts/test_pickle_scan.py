"""Opcode-level pickle scanning: global resolution, allowlist verdicts, malformed streams."""

from __future__ import annotations

import pickle
import struct
from collections import OrderedDict
from pathlib import Path

import pytest
from tests.artifacts.artifact_builders import ExecCall, SystemCall, global_call_pickle, inspect_path

from pytest_aiml.artifacts.allowlist import build_allowlist
from pytest_aiml.artifacts.byte_stream import BytesStream
from pytest_aiml.artifacts.pickle_scan import scan_pickle_stream


def qualified_globals(data: bytes) -> list[str]:
    return [item.qualified_name for item in scan_pickle_stream(BytesStream(data)).globals]


@pytest.mark.parametrize("protocol", range(6))
def test_system_call_found_every_protocol(tmp_path: Path, marker: Path, protocol: int) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0], "hook": SystemCall(marker)}, protocol=protocol))
    result = inspect_path(path, tmp_path)
    safety = result.checks["safety"]
    assert result.format == "pickle"
    assert safety.status == "fail"
    assert any("posix.system" in detail or "nt.system" in detail for detail in safety.details)
    assert any("byte " in detail for detail in safety.details)


@pytest.mark.parametrize("protocol", range(6))
def test_exec_found_every_protocol(tmp_path: Path, marker: Path, protocol: int) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps([ExecCall(marker)], protocol=protocol))
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any("builtins.exec" in detail and "dangerous" in detail for detail in safety.details)


def test_globals_through_memo_resolved(marker: Path) -> None:
    # Module and name strings are memoized once and fetched with BINGET for the import.
    module, name = b"posix", b"system"
    data = (
        b"\x80\x04"
        + b"\x8c" + bytes([len(module)]) + module + b"\x94"  # memo 0
        + b"\x8c" + bytes([len(name)]) + name + b"\x94"  # memo 1
        + b"0" + b"0"  # POP both, so only the memo contains them now
        + b"h\x00" + b"h\x01" + b"\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL
        + b"\x8c" + bytes([len(str(marker)) + 6]) + b"touch " + str(marker).encode()
        + b"\x85R."
    )
    assert qualified_globals(data) == ["posix.system"]


def test_put_get_protocol0_memo_resolved() -> None:
    data = b"Vos\np0\n0Vsystem\np1\n0g0\ng1\n\x93(Vid\ntR."
    assert qualified_globals(data) == ["os.system"]


def test_non_literal_stack_global_unresolved() -> None:
    # The module name is the result of a call, which the scanner cannot know.
    data = b"\x80\x04\x8c\x08builtins\x8c\x03str\x93\x8c\x02os\x85R\x8c\x06system\x93."
    scan = scan_pickle_stream(BytesStream(data))
    assert [item.qualified_name for item in scan.globals] == ["builtins.str"]
    assert len(scan.unresolved) == 1
    assert scan.unresolved[0].opcode == "STACK_GLOBAL"


def test_python2_names_mapped_like_pickle() -> None:
    data = b"c__builtin__\neval\n(S'1'\ntR."
    assert qualified_globals(data) == ["builtins.eval"]


def test_python2_mapping_not_applied_protocol3() -> None:
    data = b"\x80\x03c__builtin__\neval\nq\x00."
    assert qualified_globals(data) == ["__builtin__.eval"]


def test_extension_code_unresolved() -> None:
    scan = scan_pickle_stream(BytesStream(b"\x80\x02\x82\x01)R."))
    assert scan.unresolved[0].opcode == "EXT"


def test_inst_opcode_recorded() -> None:
    data = b"(S'touch x'\nios\nsystem\n."
    assert qualified_globals(data) == ["os.system"]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("builtins", "getattr"),
        ("operator", "attrgetter"),
        ("operator", "methodcaller"),
        ("operator", "itemgetter"),
        ("types", "CodeType"),
        ("types", "FunctionType"),
        ("functools", "partial"),
        ("importlib", "import_module"),
        ("builtins", "__import__"),
    ],
)
def test_generic_resolvers_rejected(tmp_path: Path, marker: Path, module: str, name: str) -> None:
    path = tmp_path / "resolver.pkl"
    path.write_bytes(global_call_pickle(module, name, ("os", "system")))
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any(f"{module}.{name}" in detail and "dangerous" in detail for detail in safety.details)


@pytest.mark.parametrize(
    ("module", "name"),
    [("os.path", "join"), ("http.server", "HTTPServer"), ("subprocess", "Popen"), ("torch.hub", "load")],
)
def test_submodule_of_dangerous_module_rejected(tmp_path: Path, module: str, name: str) -> None:
    path = tmp_path / "sub.pkl"
    path.write_bytes(global_call_pickle(module, name, ("x",), protocol=4))
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any(f"{module}.{name}" in detail for detail in safety.details)


def test_torch_allowlisted_attribute_chain_rejected() -> None:
    allowlist = build_allowlist()
    # Protocol 4 resolves dotted names attribute by attribute; only exact names pass.
    assert allowlist.check("collections", "OrderedDict").allowed
    assert not allowlist.check("collections", "OrderedDict.fromkeys").allowed
    assert not allowlist.check("torch", "load").allowed


def test_extra_allowed_globals_extend_allowlist() -> None:
    allowlist = build_allowlist(["mypkg.layers.Block", "mypkg.heads.*"])
    assert allowlist.check("mypkg.layers", "Block").allowed
    assert allowlist.check("mypkg.heads", "Anything").allowed
    assert not allowlist.check("mypkg.heads", "Anything.attr").allowed
    assert not allowlist.check("mypkg.layers", "Other").allowed


@pytest.mark.parametrize("entry", ["nodot", "bad module.x", "mod.1x", ""])
def test_invalid_extra_global_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match="module.name"):
        build_allowlist([entry])


def test_sklearn_classes_allowed_but_not_testing_helpers() -> None:
    allowlist = build_allowlist()
    assert allowlist.check("sklearn.linear_model._logistic", "LogisticRegression").allowed
    assert not allowlist.check("sklearn.utils._testing", "TempMemmap").allowed
    assert not allowlist.check("sklearn.utils", "resample").allowed
    assert not build_allowlist(allow_sklearn_classes=False).check("sklearn.pipeline", "Pipeline").allowed


def test_benign_builtin_containers_pass(tmp_path: Path) -> None:
    path = tmp_path / "config_v1.pkl"
    path.write_bytes(pickle.dumps({"layers": OrderedDict(a=1), "ids": {1, 2}, "name": "x"}))
    assert inspect_path(path, tmp_path).checks["safety"].status == "pass"


def test_truncated_pickle_unscannable(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": list(range(100))}, protocol=4)[:-20])
    result = inspect_path(path, tmp_path)
    assert result.checks["safety"].status == "unscannable"
    assert result.checks["safety"].failed


def test_malicious_global_before_corruption_reported(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "half.pkl"
    path.write_bytes(pickle.dumps(SystemCall(marker), protocol=2)[:-1] + b"\xff\xff")
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "unscannable"
    assert any("posix.system" in detail or "nt.system" in detail for detail in safety.details)


def test_large_bytes_argument_skipped_not_read() -> None:
    class CountingStream(BytesStream):
        largest_read = 0

        def read(self, size: int) -> bytes:
            CountingStream.largest_read = max(CountingStream.largest_read, size)
            return super().read(size)

    payload = b"\x80\x04\x8e" + struct.pack("<Q", 50_000_000) + b"\0" * 50_000_000 + b"."
    scan = scan_pickle_stream(CountingStream(payload))
    assert scan.complete
    assert CountingStream.largest_read < 1_000_000


def test_stacked_pickle_after_first_scanned(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "stacked.pkl"
    path.write_bytes(pickle.dumps({"w": 1}) + pickle.dumps(SystemCall(marker)))
    assert inspect_path(path, tmp_path).checks["safety"].status == "fail"
