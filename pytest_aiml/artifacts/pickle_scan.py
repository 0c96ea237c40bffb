"""Walk pickle streams opcode by opcode and record every global they import.

Nothing here unpickles. The walker simulates the unpickler's stack and memo with
inert placeholder values, only far enough to know which module and name each
``GLOBAL``, ``INST`` and ``STACK_GLOBAL`` imports. Protocol 4 and later push the
names as strings, possibly through the memo, before ``STACK_GLOBAL`` pops them. A
name that the walker cannot resolve to a literal string is recorded as unresolved,
and the safety check treats it as a failure.

Large payloads (``BINBYTES8``, long strings, joblib array data) are skipped, not read,
so memory stays bounded whatever the size of the stream.
"""

from __future__ import annotations

import lzma
import pickletools
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

# pickle itself maps Python 2 names (``__builtin__.eval``) through these tables when
# the stream's protocol is below 3 (``fix_imports=True`` is the default of pickle.load).
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING

from pytest_aiml.artifacts.byte_stream import ByteStream, PeekableStream, StreamLimitError

_OPCODES = {op.code.encode("latin-1")[0]: op for op in pickletools.opcodes}

# Values shorter than this are kept as literals (module names, parameter names,
# dtype strings); longer ones become opaque so a hostile stream cannot exhaust memory.
MAX_TRACKED_STRING = 4096
# Protocol 0 text arguments end at a newline; a line this long is not a real pickle.
MAX_LINE_BYTES = 16 << 20
MAX_CONTAINER_ITEMS = 1024
MAX_RECORDED_STRINGS = 5000
MAX_RECORDED_GLOBALS = 10000


class _Mark:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MARK"


class _Opaque:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<opaque>"


MARK = _Mark()
OPAQUE = _Opaque()


@dataclass(frozen=True, slots=True)
class GlobalReference:
    """A global imported by the stream, as the placeholder value on the simulated stack."""

    qualified_name: str


class PickledObject:
    """Placeholder for the result of calling a global (``REDUCE``, ``NEWOBJ``, ``INST``, ``OBJ``).

    ``state`` is what ``BUILD`` applied to it, when that was a literal. Mutable on
    purpose: the memo shares it with the stack exactly as the unpickler shares objects.
    """

    __slots__ = ("callable_name", "args", "state")

    def __init__(self, callable_name: str | None, args: object) -> None:
        self.callable_name = callable_name
        self.args = args
        self.state: object = OPAQUE


@dataclass(frozen=True, slots=True)
class PickleGlobal:
    """One global a pickle stream imports, where the unpickler would import it."""

    module: str
    name: str
    offset: int
    opcode: str

    @property
    def qualified_name(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True, slots=True)
class UnresolvedImport:
    """An import whose target the walker cannot know (non-literal names, extension codes)."""

    offset: int
    opcode: str
    reason: str


@dataclass(frozen=True, slots=True)
class ArrayPayload:
    """Raw bytes that follow a ``BUILD`` in joblib files, which the unpickler does not parse.

    ``nested_pickle`` is set for object arrays, whose elements are a complete pickle
    stream in place of raw bytes.
    """

    padding_prefix: bool
    byte_count: int
    nested_pickle: bool


# Returns the payload that follows a BUILD on this object, or None for an ordinary BUILD.
ArrayPayloadHook = Callable[[PickledObject], "ArrayPayload | None"]


@dataclass(frozen=True, slots=True)
class PickleStreamScan:
    """Result of walking one pickle stream.

    ``complete`` is True when the walk reached ``STOP``. ``error`` names the first
    malformed opcode and its offset. Globals seen before it are still listed, because
    the real unpickler would have imported and possibly called them by then.
    """

    globals: tuple[PickleGlobal, ...]
    unresolved: tuple[UnresolvedImport, ...]
    complete: bool
    error: str | None
    start_offset: int
    end_offset: int
    protocol: int
    opcode_count: int
    strings: tuple[str, ...]
    result: object = None
    array_payloads: int = 0
    truncated: bool = False


class PickleFormatError(Exception):
    """Malformed pickle data at a known offset."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(f"byte {offset}: {message}")
        self.offset = offset


class PickleTruncatedError(PickleFormatError):
    """The data ended before the stream did."""


@dataclass(slots=True)
class _WalkState:
    globals: list[PickleGlobal] = field(default_factory=list)
    unresolved: list[UnresolvedImport] = field(default_factory=list)
    strings: dict[str, None] = field(default_factory=dict)
    opcode_count: int = 0
    array_payloads: int = 0


def _is_dotted_identifier(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


class _Walker:
    """Simulates one pickle stream: stack, memo and protocol, with placeholder values."""

    def __init__(
        self,
        stream: PeekableStream,
        state: _WalkState,
        *,
        speculative: bool,
        max_opcodes: int,
        array_payload: ArrayPayloadHook | None,
    ) -> None:
        self.stream = stream
        self.state = state
        self.speculative = speculative
        self.max_opcodes = max_opcodes
        self.array_payload = array_payload
        self.stack: list[object] = []
        self.memo: dict[int, object] = {}
        self.protocol = 0
        self.opcode_offset = 0

    # Reading arguments -------------------------------------------------------------

    def _read_exact(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) != size:
            raise PickleTruncatedError(self.opcode_offset, "stream ends inside an opcode argument")
        return data

    def _skip_exact(self, size: int) -> None:
        if self.stream.skip(size) != size:
            raise PickleTruncatedError(self.opcode_offset, "stream ends inside an opcode argument")

    def _read_line(self) -> bytes:
        line = self.stream.readline(MAX_LINE_BYTES)
        if line is None:
            raise PickleTruncatedError(self.opcode_offset, "text argument without a terminating newline")
        return line[:-1]

    def _read_sized(self, length: int, *, text: bool) -> object:
        """Read a length-prefixed payload, keeping short text and skipping everything else."""
        if length < 0:
            raise PickleFormatError(self.opcode_offset, f"negative length {length}")
        if not text or length > MAX_TRACKED_STRING:
            self._skip_exact(length)
            return OPAQUE
        raw = self._read_exact(length)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            # BINSTRING-family payloads decode as latin-1 under encoding="latin1".
            return raw.decode("latin-1")

    def _unsigned(self, size: int) -> int:
        return int.from_bytes(self._read_exact(size), "little", signed=False)

    def _signed4(self) -> int:
        return struct.unpack("<i", self._read_exact(4))[0]

    def _read_argument(self, name: str) -> object:
        if name == "uint1":
            return self._unsigned(1)
        if name == "uint2":
            return self._unsigned(2)
        if name == "int4":
            return self._signed4()
        if name == "uint4":
            return self._unsigned(4)
        if name == "uint8":
            return self._unsigned(8)
        if name == "float8":
            return struct.unpack(">d", self._read_exact(8))[0]
        if name == "long1":
            return self._read_long(self._unsigned(1))
        if name == "long4":
            return self._read_long(self._signed4())
        if name in ("string1", "unicodestring1"):
            return self._read_sized(self._unsigned(1), text=True)
        if name == "string4":
            return self._read_sized(self._signed4(), text=True)
        if name == "unicodestring4":
            return self._read_sized(self._unsigned(4), text=True)
        if name == "unicodestring8":
            return self._read_sized(self._unsigned(8), text=True)
        if name == "bytes1":
            return self._read_sized(self._unsigned(1), text=False)
        if name == "bytes4":
            return self._read_sized(self._unsigned(4), text=False)
        if name in ("bytes8", "bytearray8"):
            return self._read_sized(self._unsigned(8), text=False)
        if name == "stringnl_noescape_pair":
            return (self._decode_line(self._read_line()), self._decode_line(self._read_line()))
        if name in ("stringnl", "stringnl_noescape", "unicodestringnl"):
            return self._text_line_value(name, self._read_line())
        if name in ("decimalnl_short", "decimalnl_long"):
            return self._number_line_value(self._read_line(), integer=True)
        if name == "floatnl":
            return self._number_line_value(self._read_line(), integer=False)
        raise PickleFormatError(self.opcode_offset, f"unknown argument kind {name!r}")

    def _read_long(self, length: int) -> object:
        if length < 0:
            raise PickleFormatError(self.opcode_offset, f"negative length {length}")
        if length > 64:
            self._skip_exact(length)
            return OPAQUE
        return int.from_bytes(self._read_exact(length), "little", signed=True)

    def _decode_line(self, line: bytes) -> str:
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            raise PickleFormatError(self.opcode_offset, "global name is not valid UTF-8") from None

    def _text_line_value(self, kind: str, line: bytes) -> object:
        if len(line) > MAX_TRACKED_STRING:
            return OPAQUE
        text = line.decode("latin-1")
        if kind == "stringnl":
            # Protocol 0 STRING is a quoted Python literal; only the quotes matter here.
            if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
                return text[1:-1]
            raise PickleFormatError(self.opcode_offset, "STRING argument is not quoted")
        if kind == "unicodestringnl":
            return line.decode("raw-unicode-escape", errors="replace")
        return text

    def _number_line_value(self, line: bytes, *, integer: bool) -> object:
        text = line.decode("latin-1").strip().rstrip("L")
        try:
            if integer:
                return int(text) if len(text) <= 64 else OPAQUE
            return float(text)
        except ValueError:
            raise PickleFormatError(self.opcode_offset, f"invalid number {text[:40]!r}") from None

    # Stack helpers -----------------------------------------------------------------

    def _pop(self) -> object:
        if not self.stack or self.stack[-1] is MARK:
            raise PickleFormatError(self.opcode_offset, "stack underflow")
        return self.stack.pop()

    def _top(self) -> object:
        if not self.stack or self.stack[-1] is MARK:
            raise PickleFormatError(self.opcode_offset, "stack underflow")
        return self.stack[-1]

    def _pop_to_mark(self) -> list[object]:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index] is MARK:
                items = self.stack[index + 1 :]
                del self.stack[index:]
                return items
        raise PickleFormatError(self.opcode_offset, "no MARK on the stack")

    def _record_string(self, value: object) -> None:
        if (
            isinstance(value, str)
            and len(value) <= 200
            and len(self.state.strings) < MAX_RECORDED_STRINGS
        ):
            self.state.strings[value] = None

    def _record_global(self, module: str, name: str, opcode: str) -> GlobalReference:
        if self.protocol < 3:
            if (module, name) in NAME_MAPPING:
                module, name = NAME_MAPPING[(module, name)]
            elif module in IMPORT_MAPPING:
                module = IMPORT_MAPPING[module]
        if self.speculative and not (_is_dotted_identifier(module) and _is_dotted_identifier(name)):
            # Python could not import such a name, so in data that is only possibly a
            # pickle this is far more likely random bytes than an import.
            raise PickleFormatError(self.opcode_offset, "global name is not an identifier")
        if len(self.state.globals) < MAX_RECORDED_GLOBALS:
            self.state.globals.append(PickleGlobal(module, name, self.opcode_offset, opcode))
        return GlobalReference(f"{module}.{name}")

    def _record_unresolved(self, opcode: str, reason: str) -> None:
        self.state.unresolved.append(UnresolvedImport(self.opcode_offset, opcode, reason))

    # The walk ----------------------------------------------------------------------

    def walk(self) -> object:
        """Walk to ``STOP`` and return the simulated top of the stack."""
        while True:
            self.opcode_offset = self.stream.tell()
            code = self.stream.read(1)
            if not code:
                raise PickleTruncatedError(self.opcode_offset, "stream ends before STOP")
            opcode = _OPCODES.get(code[0])
            if opcode is None:
                raise PickleFormatError(self.opcode_offset, f"invalid opcode 0x{code[0]:02x}")
            self.state.opcode_count += 1
            if self.state.opcode_count > self.max_opcodes:
                raise PickleFormatError(
                    self.opcode_offset, f"more than {self.max_opcodes} opcodes"
                )
            argument = self._read_argument(opcode.arg.name) if opcode.arg is not None else None
            self._record_string(argument)
            if opcode.name == "STOP":
                return self._pop() if self.stack and self.stack[-1] is not MARK else OPAQUE
            self._apply(opcode, argument)

    def _apply(self, opcode: pickletools.OpcodeInfo, argument: object) -> None:
        handler = getattr(self, f"_op_{opcode.name}", None)
        if handler is not None:
            handler(argument)
            return
        self._apply_generic(opcode, argument)

    def _apply_generic(self, opcode: pickletools.OpcodeInfo, argument: object) -> None:
        """Apply an opcode's declared stack effect, pushing its argument or a placeholder."""
        before = opcode.stack_before
        if pickletools.markobject in before:
            items = self._pop_to_mark()
            below_mark = before.index(pickletools.markobject)
            popped = [self._pop() for _ in range(below_mark)]
            self._push_result(opcode, argument, items, popped)
            return
        popped = [self._pop() for _ in range(len(before))]
        self._push_result(opcode, argument, [], popped)

    def _push_result(
        self,
        opcode: pickletools.OpcodeInfo,
        argument: object,
        items: list[object],
        popped: list[object],
    ) -> None:
        name = opcode.name
        if name in ("TUPLE", "LIST"):
            value: object = tuple(items) if name == "TUPLE" else list(items)
            self.stack.append(value if len(items) <= MAX_CONTAINER_ITEMS else OPAQUE)
            return
        if name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            self.stack.append(tuple(reversed(popped)))
            return
        if name == "DICT":
            self.stack.append(_dict_from_pairs(items))
            return
        if name in ("APPEND", "APPENDS"):
            target = popped[-1] if name == "APPENDS" else popped[1]
            additions = items if name == "APPENDS" else [popped[0]]
            if isinstance(target, list) and len(target) + len(additions) <= MAX_CONTAINER_ITEMS:
                target.extend(additions)
            self.stack.append(target)
            return
        if name in ("SETITEM", "SETITEMS"):
            target = popped[-1]
            # SETITEM pops value, then key, then the dict.
            pairs = items if name == "SETITEMS" else [popped[1], popped[0]]
            if isinstance(target, dict):
                target.update(_dict_from_pairs(pairs))
            self.stack.append(target)
            return
        if name in ("ADDITEMS",):
            self.stack.append(popped[-1])
            return
        for result in opcode.stack_after:
            if result is pickletools.markobject:
                self.stack.append(MARK)
            elif name in ("EMPTY_LIST",):
                self.stack.append([])
            elif name in ("EMPTY_DICT",):
                self.stack.append({})
            elif name in ("EMPTY_TUPLE",):
                self.stack.append(())
            elif name in ("NONE",):
                self.stack.append(None)
            elif name in ("NEWTRUE", "NEWFALSE"):
                self.stack.append(name == "NEWTRUE")
            elif argument is not None and name not in _OPAQUE_ARGUMENT_OPCODES:
                self.stack.append(argument)
            else:
                self.stack.append(OPAQUE)

    # Opcodes with special meaning ---------------------------------------------------

    def _op_PROTO(self, argument: object) -> None:
        self.protocol = int(argument)  # type: ignore[arg-type]

    def _op_POP(self, argument: object) -> None:
        if not self.stack:
            raise PickleFormatError(self.opcode_offset, "stack underflow")
        # Popping on an empty segment removes the MARK, as pickle's load_pop does.
        self.stack.pop()

    def _op_DUP(self, argument: object) -> None:
        self.stack.append(self._top())

    def _op_GLOBAL(self, argument: object) -> None:
        module, name = argument  # type: ignore[misc]
        self.stack.append(self._record_global(module, name, "GLOBAL"))

    def _op_INST(self, argument: object) -> None:
        module, name = argument  # type: ignore[misc]
        reference = self._record_global(module, name, "INST")
        args = self._pop_to_mark()
        self.stack.append(PickledObject(reference.qualified_name, tuple(args)))

    def _op_STACK_GLOBAL(self, argument: object) -> None:
        name = self._pop()
        module = self._pop()
        if isinstance(module, str) and isinstance(name, str):
            self.stack.append(self._record_global(module, name, "STACK_GLOBAL"))
            return
        if self.speculative:
            raise PickleFormatError(self.opcode_offset, "STACK_GLOBAL on non-string operands")
        self._record_unresolved(
            "STACK_GLOBAL", "module or name is not a literal string the scanner can resolve"
        )
        self.stack.append(OPAQUE)

    def _ext(self, argument: object) -> None:
        if self.speculative:
            raise PickleFormatError(self.opcode_offset, "extension registry code")
        # The copyreg extension registry maps codes to arbitrary globals at load time.
        self._record_unresolved("EXT", f"extension registry code {argument} names an unknown global")
        self.stack.append(OPAQUE)

    _op_EXT1 = _op_EXT2 = _op_EXT4 = _ext

    def _op_OBJ(self, argument: object) -> None:
        items = self._pop_to_mark()
        if not items:
            raise PickleFormatError(self.opcode_offset, "OBJ without a class")
        callable_value = items[0]
        self.stack.append(PickledObject(_callable_name(callable_value), tuple(items[1:])))

    def _op_REDUCE(self, argument: object) -> None:
        args = self._pop()
        callable_value = self._pop()
        self.stack.append(PickledObject(_callable_name(callable_value), args))

    def _op_NEWOBJ(self, argument: object) -> None:
        args = self._pop()
        cls = self._pop()
        self.stack.append(PickledObject(_callable_name(cls), args))

    def _op_NEWOBJ_EX(self, argument: object) -> None:
        self._pop()  # keyword arguments
        args = self._pop()
        cls = self._pop()
        self.stack.append(PickledObject(_callable_name(cls), args))

    def _op_BUILD(self, argument: object) -> None:
        state = self._pop()
        target = self._top()
        if isinstance(target, PickledObject):
            target.state = state
            if self.array_payload is not None:
                try:
                    payload = self.array_payload(target)
                except ValueError as exc:
                    raise PickleFormatError(self.opcode_offset, str(exc)) from None
                if payload is not None:
                    self._consume_array_payload(payload)

    def _consume_array_payload(self, payload: ArrayPayload) -> None:
        self.state.array_payloads += 1
        if payload.nested_pickle:
            nested = _Walker(
                self.stream,
                self.state,
                speculative=False,
                max_opcodes=self.max_opcodes,
                array_payload=self.array_payload,
            )
            nested.walk()
            return
        if payload.padding_prefix:
            padding = self._unsigned(1)
            self._skip_exact(padding)
        self._skip_exact(payload.byte_count)

    def _memo_store(self, index: object) -> None:
        if not isinstance(index, int) or index < 0:
            raise PickleFormatError(self.opcode_offset, f"invalid memo index {index!r}")
        self.memo[index] = self._top()

    def _op_PUT(self, argument: object) -> None:
        self._memo_store(argument)

    _op_BINPUT = _op_LONG_BINPUT = _op_PUT

    def _op_MEMOIZE(self, argument: object) -> None:
        self._memo_store(len(self.memo))

    def _op_GET(self, argument: object) -> None:
        if argument not in self.memo:
            raise PickleFormatError(self.opcode_offset, f"memo key {argument!r} not found")
        self.stack.append(self.memo[argument])  # type: ignore[index]

    _op_BINGET = _op_LONG_BINGET = _op_GET

    def _op_FRAME(self, argument: object) -> None:
        # Frames only group opcodes for buffered reading; the content continues inline.
        return


# Opcodes whose argument is not the value they push.
_OPAQUE_ARGUMENT_OPCODES = frozenset(
    {"PERSID", "BINPERSID", "PUT", "BINPUT", "LONG_BINPUT", "FRAME", "PROTO", "BYTEARRAY8"}
)


def _callable_name(value: object) -> str | None:
    return value.qualified_name if isinstance(value, GlobalReference) else None


def _dict_from_pairs(items: list[object]) -> dict[object, object]:
    result: dict[object, object] = {}
    for key, value in zip(items[0::2], items[1::2]):
        if isinstance(key, (str, int, float, bool, type(None))) and len(result) < MAX_CONTAINER_ITEMS:
            result[key] = value
    return result


def scan_pickle_stream(
    stream: ByteStream | PeekableStream,
    *,
    speculative: bool = False,
    max_opcodes: int = 50_000_000,
    array_payload: ArrayPayloadHook | None = None,
) -> PickleStreamScan:
    """Walk one pickle stream from the stream's current position to its ``STOP``.

    With ``speculative=True`` the bytes are only possibly a pickle (a zip member of
    unknown purpose, data after the last pickle of a file): malformed input then
    ends the walk early and quietly, and the caller judges by the globals found.
    """
    peekable = stream if isinstance(stream, PeekableStream) else PeekableStream(stream)
    state = _WalkState()
    walker = _Walker(
        peekable,
        state,
        speculative=speculative,
        max_opcodes=max_opcodes,
        array_payload=array_payload,
    )
    start = peekable.tell()
    error: str | None = None
    result: object = None
    truncated = False
    try:
        result = walker.walk()
    except PickleFormatError as exc:
        error = str(exc)
        truncated = isinstance(exc, PickleTruncatedError)
    except RecursionError:
        error = f"byte {walker.opcode_offset}: nested array payloads too deep"
    except (OSError, EOFError, zlib.error, lzma.LZMAError, StreamLimitError) as exc:
        # Decompressing streams (joblib files, deflated zip members) fail here.
        error = f"byte {walker.opcode_offset}: data cannot be decompressed: {exc}"
    return PickleStreamScan(
        globals=tuple(state.globals),
        unresolved=tuple(state.unresolved),
        complete=error is None,
        error=error,
        start_offset=start,
        end_offset=peekable.tell(),
        protocol=walker.protocol,
        opcode_count=state.opcode_count,
        strings=tuple(state.strings),
        result=result if isinstance(result, (int, str, float, bool, type(None))) else None,
        array_payloads=state.array_payloads,
        truncated=truncated,
    )


def scan_pickle_sequence(
    stream: ByteStream,
    *,
    max_opcodes: int = 50_000_000,
    array_payload: ArrayPayloadHook | None = None,
    primary_count: int = 1,
    max_streams: int = 64,
) -> tuple[PickleStreamScan, ...]:
    """Walk consecutive pickle streams: ``primary_count`` required ones, then any that follow.

    ``pickle.load`` called repeatedly on one file reads stacked pickles (legacy torch
    files hold five), so the bytes after each ``STOP`` are walked speculatively as
    another stream until the data ends or stops parsing.
    """
    peekable = PeekableStream(stream)
    scans: list[PickleStreamScan] = []
    while len(scans) < max_streams:
        if not peekable.peek(1):
            break
        speculative = len(scans) >= primary_count
        scan = scan_pickle_stream(
            peekable,
            speculative=speculative,
            max_opcodes=max_opcodes,
            array_payload=array_payload,
        )
        scans.append(scan)
        if not scan.complete:
            break
    return tuple(scans)
