"""Identify a model file's format from its bytes, with the suffix only as a hint.

Format names returned by ``sniff_format``:

============== ==============================================================
pickle         a raw pickle stream of any protocol (0 and 1 included)
joblib         a joblib dump: a pickle with inline arrays, maybe compressed
torch-zip      a ``torch.save`` zip (``<archive>/data.pkl``)
torchscript    a ``torch.jit.save`` zip (``code/`` and ``constants.pkl``)
torch-legacy   stacked pickles of ``torch.save(_use_new_zipfile_serialization=False)``
safetensors    8-byte header length followed by a JSON header
onnx           an ONNX ``ModelProto``
hdf5           an HDF5 file (Keras ``.h5`` models and weights)
keras-zip      a Keras 3 ``.keras`` zip (``config.json`` and ``metadata.json``)
npy            a NumPy ``.npy`` array
npz            a NumPy ``.npz`` zip of arrays
zip            any other zip with a model suffix
7z             a 7-Zip archive
tar            a tar archive with a model suffix (very old torch checkpoints)
gguf           a GGUF (llama.cpp) file
tflite         a TensorFlow Lite flatbuffer
tensorflow-pb  a protobuf ``.pb`` that is not ONNX (TensorFlow graphs)
lfs-pointer    a Git LFS pointer standing in for the real file
not-a-model    anything else, including a model suffix on other content
============== ==============================================================

Files without a model suffix get a format only from strong signals (a torch or
Keras zip, a safetensors or npy header, a complete pickle, an ONNX graph); plain
zips, tars and LFS pointers of other files are "not-a-model".
"""

from __future__ import annotations

import logging
import lzma
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

from pytest_aiml.artifacts.byte_stream import BytesStream, StreamLimitError
from pytest_aiml.artifacts.extensions import has_model_extension
from pytest_aiml.artifacts.joblib_files import UnsupportedCompression, detect_compression, open_decompressed
from pytest_aiml.artifacts.lfs import MAX_POINTER_BYTES, parse_lfs_pointer
from pytest_aiml.artifacts.numpy_files import NPY_MAGIC
from pytest_aiml.artifacts.onnx_proto import OnnxProtoError, read_onnx_top_level
from pytest_aiml.artifacts.pickle_scan import PickleStreamScan, scan_pickle_stream
from pytest_aiml.artifacts.safetensors_check import MAX_HEADER_SIZE
from pytest_aiml.artifacts.torch_files import LEGACY_MAGIC_NUMBER, is_torch_zip, is_torchscript
from pytest_aiml.artifacts.zipread import ZipReadError, read_zip_members

logger = logging.getLogger("pytest_aiml.artifacts")

PICKLE = "pickle"
JOBLIB = "joblib"
TORCH_ZIP = "torch-zip"
TORCHSCRIPT = "torchscript"
TORCH_LEGACY = "torch-legacy"
SAFETENSORS = "safetensors"
ONNX = "onnx"
HDF5 = "hdf5"
KERAS_ZIP = "keras-zip"
NPY = "npy"
NPZ = "npz"
ZIP = "zip"
SEVEN_ZIP = "7z"
TAR = "tar"
GGUF = "gguf"
TFLITE = "tflite"
TENSORFLOW_PB = "tensorflow-pb"
LFS_POINTER = "lfs-pointer"
NOT_A_MODEL = "not-a-model"

FORMATS = (
    PICKLE, JOBLIB, TORCH_ZIP, TORCHSCRIPT, TORCH_LEGACY, SAFETENSORS, ONNX, HDF5, KERAS_ZIP,
    NPY, NPZ, ZIP, SEVEN_ZIP, TAR, GGUF, TFLITE, TENSORFLOW_PB, LFS_POINTER, NOT_A_MODEL,
)
# Formats that carry pickles and are scanned opcode by opcode.
PICKLE_FORMATS = frozenset({PICKLE, JOBLIB, TORCH_ZIP, TORCHSCRIPT, TORCH_LEGACY, NPZ, ZIP})

_HEAD_BYTES = 64 * 1024
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# HDF5 allows a user block before the superblock; the signature then sits at one of these.
_HDF5_OFFSETS = (0, 512, 1024, 2048, 4096)
_SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
# Opcodes a protocol 0 or 1 pickle can start with (protocol 2+ starts with PROTO).
_PICKLE_START_OPCODES = frozenset(b"(}]).NIJKLMFGSTUVXc\x88\x89\x8a\x8b")
# Signatures of common non-model files (images, PDF, executables, HTML) that no
# suffix can turn into a model.
_OTHER_FILE_MAGICS = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"\x7fELF", b"<!DOCTYPE", b"<html")
_JOBLIB_SUFFIXES = (".joblib", ".pkl", ".pickle", ".sav", ".z", ".gz", ".bz2", ".xz", ".lzma")


def sniff_format(path: Path) -> str:
    """Return the format name of the file at ``path`` (one of ``FORMATS``).

    Reads at most the first 64 KiB plus, for zips, the central directory, and for
    protobuf candidates the top-level field headers. Raises ``OSError`` when the file
    cannot be opened.
    """
    with path.open("rb") as file:
        file.seek(0, 2)
        size = file.tell()
        file.seek(0)
        head = file.read(_HEAD_BYTES)
        return _sniff_open_file(file, head, size, path.name)


def _sniff_open_file(file: BinaryIO, head: bytes, size: int, name: str) -> str:
    model_named = has_model_extension(name)
    suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if not head:
        return NOT_A_MODEL
    if size <= MAX_POINTER_BYTES and parse_lfs_pointer(head) is not None:
        return LFS_POINTER if model_named else NOT_A_MODEL
    if head.startswith(_ZIP_MAGICS):
        return _sniff_zip(file, size, name, model_named)
    if head.startswith(NPY_MAGIC):
        return NPY
    if head.startswith(_SEVEN_ZIP_MAGIC):
        return SEVEN_ZIP if model_named else NOT_A_MODEL
    if any(head[offset : offset + 8] == _HDF5_MAGIC for offset in _HDF5_OFFSETS):
        return HDF5 if model_named else NOT_A_MODEL
    if head.startswith(b"GGUF"):
        return GGUF
    if head[4:8] == b"TFL3":
        return TFLITE
    if _looks_like_safetensors(head, size):
        return SAFETENSORS
    if len(head) >= 262 and head[257:262] == b"ustar":
        return TAR if model_named else NOT_A_MODEL
    pickle_format = _sniff_pickle(head, size, name, model_named)
    if pickle_format is not None:
        return pickle_format
    compressed = _sniff_compressed_joblib(file, head, name)
    if compressed is not None:
        return compressed
    if _looks_like_onnx(file, size):
        return ONNX
    if suffix == "pb" and _looks_like_protobuf(head):
        return TENSORFLOW_PB
    if suffix == "safetensors" and size >= 8 and not head.startswith(_OTHER_FILE_MAGICS):
        # safetensors has no magic number, so a file that claims the suffix is
        # validated as one: its header errors are more useful than "not a model".
        return SAFETENSORS
    return NOT_A_MODEL


def _sniff_zip(file: BinaryIO, size: int, name: str, model_named: bool) -> str:
    lowered = name.lower()
    try:
        names = [member.name for member in read_zip_members(file, size, max_members=1_000_000)]
    except ZipReadError:
        # An unreadable zip with a model suffix is still reported, as unscannable.
        if lowered.endswith(".npz"):
            return NPZ
        if lowered.endswith(".keras"):
            return KERAS_ZIP
        return ZIP if model_named else NOT_A_MODEL
    if is_torchscript(names):
        return TORCHSCRIPT
    if is_torch_zip(names):
        return TORCH_ZIP
    if "config.json" in names and ("metadata.json" in names or lowered.endswith(".keras")):
        return KERAS_ZIP
    if lowered.endswith(".npz") or (names and all(member.endswith(".npy") for member in names)):
        return NPZ
    return ZIP if model_named else NOT_A_MODEL


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (header_length,) = struct.unpack("<Q", head[:8])
    return 2 <= header_length <= min(MAX_HEADER_SIZE, size - 8) and head[8:9] == b"{"


def _probe_pickle(head: bytes) -> PickleStreamScan:
    return scan_pickle_stream(BytesStream(head), max_opcodes=100_000)


def _sniff_pickle(head: bytes, size: int, name: str, model_named: bool) -> str | None:
    first = head[0]
    proto_start = first == 0x80 and len(head) > 1 and 2 <= head[1] <= 5
    if not proto_start and first not in _PICKLE_START_OPCODES:
        return None
    probe = _probe_pickle(head)
    whole_file_probed = len(head) >= size
    ended_by_probe = probe.truncated and not whole_file_probed
    plausible = probe.complete or ended_by_probe or (proto_start and model_named)
    if not plausible or (not proto_start and probe.opcode_count < 3):
        return None
    if not model_named and not (probe.complete or (proto_start and ended_by_probe)):
        return None
    if probe.complete and probe.result == LEGACY_MAGIC_NUMBER:
        return TORCH_LEGACY
    mentions_joblib = any(item.module.startswith("joblib") for item in probe.globals)
    if name.lower().endswith(".joblib") or mentions_joblib or b"joblib.numpy_pickle" in head:
        return JOBLIB
    return PICKLE


def _sniff_compressed_joblib(file: BinaryIO, head: bytes, name: str) -> str | None:
    compression = detect_compression(head)
    if compression is None or not name.lower().endswith(_JOBLIB_SUFFIXES):
        return None
    try:
        inner = open_decompressed(file, compression, max_output_bytes=_HEAD_BYTES).read(4096)
    except UnsupportedCompression:
        return JOBLIB if name.lower().endswith(".joblib") else None
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, StreamLimitError) as exc:
        logger.debug("%s: %s-looking prefix does not decompress: %s", name, compression, exc)
        return None
    if inner and _sniff_pickle(inner, len(inner) + 1, name, True) is not None:
        return JOBLIB
    return None


def _looks_like_onnx(file: BinaryIO, size: int) -> bool:
    try:
        top_level = read_onnx_top_level(file, size)
    except OnnxProtoError:
        return False
    return top_level.has_graph


def _looks_like_protobuf(head: bytes) -> bool:
    # Field 1 or 2 with varint or length-delimited wire type, as SavedModel and GraphDef start.
    return bool(head) and head[0] in (0x08, 0x0A, 0x10, 0x12)
