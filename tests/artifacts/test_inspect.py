"""Sniffing, versioning, documentation, inventory fields and the inspection result type."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_aiml.artifacts import MODEL_EXTENSIONS, has_model_extension
from pytest_aiml.artifacts.inspect import LFS_SKIP_REASON, inspect_artifact
from pytest_aiml.artifacts.results import ArtifactInspection, CheckResult, format_size
from pytest_aiml.artifacts.settings import ArtifactSettings
from pytest_aiml.artifacts.sniff import FORMATS, sniff_format
from pytest_aiml.artifacts.versioning import version_from_name
from tests.artifacts.artifact_builders import build_zip, inspect_path, repo_files

LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 12345\n"
)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("image.pt", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not-a-model"),
        ("empty.pt", b"", "not-a-model"),
        ("notes.bin", b"hello world, not a model\n", "not-a-model"),
        ("proto0.pkl", pickle.dumps({"a": [1, 2]}, protocol=0), "pickle"),
        ("proto1.pkl", pickle.dumps({"a": [1, 2]}, protocol=1), "pickle"),
        ("proto0.dat", pickle.dumps({"a": [1, 2]}, protocol=0), "pickle"),
        ("model.pt", LFS_POINTER, "lfs-pointer"),
        ("picture.png", LFS_POINTER, "not-a-model"),
        ("archive.7z", b"7z\xbc\xaf\x27\x1c" + b"\0" * 32, "7z"),
        ("model.gguf", b"GGUF" + b"\0" * 32, "gguf"),
        ("weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "hdf5"),
        ("data.zip", build_zip([("a.txt", b"x")]), "not-a-model"),
        ("model.bin", build_zip([("a.txt", b"x")]), "zip"),
        ("renamed.txt", build_zip([("archive/data.pkl", pickle.dumps(1))]), "torch-zip"),
    ],
)
def test_sniff_by_content(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert sniff_format(path) == expected
    assert expected in FORMATS


def test_model_extensions_cover_common_suffixes() -> None:
    for suffix in (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".joblib", ".safetensors", ".onnx", ".h5", ".keras", ".npy", ".npz", ".gguf", ".7z"):
        assert suffix in MODEL_EXTENSIONS
    assert has_model_extension("checkpoint.PTH.tar")
    assert not has_model_extension("README.md")


def test_not_a_model_reported_not_crashed(tmp_path: Path) -> None:
    path = tmp_path / "photo.pt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    result = inspect_path(path, tmp_path)
    assert result.format == "not-a-model"
    assert all(check.status == "skip" for check in result.checks.values())
    assert "not a model file" in result.checks["safety"].summary


def test_lfs_pointer_versioned_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "models" / "model.pt"
    path.parent.mkdir()
    path.write_bytes(LFS_POINTER)
    result = inspect_path(path, tmp_path)
    assert result.format == "lfs-pointer"
    assert result.checks["safety"].status == "skip"
    assert result.checks["safety"].summary == LFS_SKIP_REASON
    assert result.checks["validity"].summary == LFS_SKIP_REASON
    assert result.checks["versioning"].status == "pass"
    assert result.version == "lfs:sha256:4d7a214614ab"


def test_size_limit_lists_but_does_not_read(tmp_path: Path) -> None:
    path = tmp_path / "big_v1.pkl"
    path.write_bytes(pickle.dumps(list(range(1000))))
    result = inspect_path(path, tmp_path, settings=ArtifactSettings(max_read_bytes=100))
    assert result.checks["safety"].status == "unscannable"
    assert "exceeds max_read_bytes" in result.checks["safety"].summary
    assert result.size_bytes == path.stat().st_size


def test_unsupported_format_unscannable(tmp_path: Path) -> None:
    path = tmp_path / "weights.7z"
    path.write_bytes(b"7z\xbc\xaf\x27\x1c" + b"\0" * 32)
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "unscannable"
    assert safety.failed


@pytest.mark.parametrize(
    ("rel_path", "expected"),
    [
        ("model_v3.pt", "3"),
        ("model-v1.2.0.onnx", "1.2.0"),
        ("resnet.v2.pth", "2"),
        ("model-1.4.0.pkl", "1.4.0"),
        ("model_20240115.pt", "20240115"),
        ("ckpt-2024-01-15.ckpt", "2024-01-15"),
        ("models/v7/model.pt", "7"),
        ("models/version_2/model.pt", "2"),
        ("resnet50.pt", None),
        ("gpt2.bin", None),
        ("model-00001-of-00002.safetensors", None),
    ],
)
def test_version_from_name(rel_path: str, expected: str | None) -> None:
    assert version_from_name(rel_path) == expected


def write_model(root: Path, rel_path: str) -> Path:
    path = root / rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"w": 1.0}))
    return path


def versioning_of(root: Path, rel_path: str) -> tuple[str, str | None]:
    result = inspect_path(root / rel_path, root)
    return result.checks["versioning"].status, result.version


def test_unversioned_fails(tmp_path: Path) -> None:
    write_model(tmp_path, "models/model.pkl")
    result = inspect_path(tmp_path / "models/model.pkl", tmp_path)
    assert result.checks["versioning"].status == "fail"
    assert result.checks["versioning"].summary.startswith("No model versioning")
    assert result.version is None


def test_mlmodel_sidecar_versions(tmp_path: Path) -> None:
    write_model(tmp_path, "mlruns/model/model.pkl")
    (tmp_path / "mlruns/model/MLmodel").write_text("artifact_path: model\nrun_id: 0a1b2c3d\n")
    assert versioning_of(tmp_path, "mlruns/model/model.pkl") == ("pass", "mlflow:0a1b2c3d")


def test_metadata_sidecar_versions(tmp_path: Path) -> None:
    write_model(tmp_path, "models/model.pkl")
    (tmp_path / "models/model.json").write_text(json.dumps({"version": "4.2"}))
    assert versioning_of(tmp_path, "models/model.pkl") == ("pass", "4.2")


def test_model_card_version(tmp_path: Path) -> None:
    write_model(tmp_path, "models/model.pkl")
    (tmp_path / "models/README.md").write_text("# Churn model\n\n- **Version**: 1.3.0\n")
    assert versioning_of(tmp_path, "models/model.pkl") == ("pass", "1.3.0")


def test_dvc_tracking_versions(tmp_path: Path) -> None:
    write_model(tmp_path, "models/model.pkl")
    (tmp_path / "models/model.pkl.dvc").write_text("outs:\n- md5: 0123456789abcdef0123\n  size: 10\n  path: model.pkl\n")
    assert versioning_of(tmp_path, "models/model.pkl") == ("pass", "dvc:0123456789ab")


def test_dvc_directory_output_versions(tmp_path: Path) -> None:
    write_model(tmp_path, "models/model.pkl")
    (tmp_path / "models.dvc").write_text("outs:\n- md5: abcdef.dir\n  path: models\n")
    assert versioning_of(tmp_path, "models/model.pkl")[0] == "pass"


def test_gitattributes_lfs_versions(tmp_path: Path) -> None:
    write_model(tmp_path, "models/model.pkl")
    (tmp_path / ".gitattributes").write_text("*.pkl filter=lfs diff=lfs merge=lfs -text\n")
    assert versioning_of(tmp_path, "models/model.pkl") == ("pass", "git-lfs")


def test_gitattributes_unset_rule_wins(tmp_path: Path) -> None:
    write_model(tmp_path, "models/model.pkl")
    (tmp_path / ".gitattributes").write_text("*.pkl filter=lfs\nmodels/*.pkl -filter\n")
    assert versioning_of(tmp_path, "models/model.pkl")[0] == "fail"


def test_mlflow_registry_reference_versions(tmp_path: Path) -> None:
    write_model(tmp_path, "models/model.pkl")
    (tmp_path / "register.py").write_text(
        "import mlflow\nmlflow.register_model('runs:/abc/models/model.pkl', 'churn')\n"
    )
    assert versioning_of(tmp_path, "models/model.pkl") == ("pass", "mlflow-registry")


def test_documentation_model_card(tmp_path: Path) -> None:
    write_model(tmp_path, "models/model_v1.pkl")
    (tmp_path / "models/MODEL_CARD.md").write_text("# Model card\n")
    result = inspect_path(tmp_path / "models/model_v1.pkl", tmp_path)
    assert result.checks["documentation"].status == "pass"


def test_documentation_docs_mention(tmp_path: Path) -> None:
    write_model(tmp_path, "models/model_v1.pkl")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/serving.md").write_text("We serve `models/model_v1.pkl` behind the API.\n")
    result = inspect_path(tmp_path / "models/model_v1.pkl", tmp_path)
    assert result.checks["documentation"].status == "pass"
    assert "docs/serving.md" in result.checks["documentation"].summary


def test_documentation_missing_fails(tmp_path: Path) -> None:
    write_model(tmp_path, "models/model_v1.pkl")
    (tmp_path / "README.md").write_text("A project.\n")
    assert inspect_path(tmp_path / "models/model_v1.pkl", tmp_path).checks["documentation"].status == "fail"


def test_inspection_round_trips_through_builtins(tmp_path: Path) -> None:
    write_model(tmp_path, "model_v2.pkl")
    result = inspect_path(tmp_path / "model_v2.pkl", tmp_path)
    wire = result.to_dict()
    assert json.loads(json.dumps(wire)) == wire
    restored = ArtifactInspection.from_dict(wire)
    assert restored == result
    assert restored.checks["safety"] == result.checks["safety"]
    assert set(wire["checks"]) == {"safety", "versioning", "validity", "documentation"}


def test_inspection_is_immutable(tmp_path: Path) -> None:
    write_model(tmp_path, "model_v2.pkl")
    result = inspect_path(tmp_path / "model_v2.pkl", tmp_path)
    with pytest.raises(TypeError):
        result.checks["safety"] = CheckResult("pass", "x")  # type: ignore[index]


def test_invalid_status_rejected() -> None:
    with pytest.raises(ValueError, match="invalid check status"):
        CheckResult("ok", "x")


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, "0B"), (512, "512B"), (12595, "12.3KB"), (471859200, "450MB"), (1024**3, "1GB"), (5 * 1024**4, "5TB")],
)
def test_format_size(size: int, expected: str) -> None:
    assert format_size(size) == expected


def test_settings_reject_invalid_values() -> None:
    with pytest.raises(ValueError, match="max_read_bytes"):
        ArtifactSettings(max_read_bytes=0)
    with pytest.raises(ValueError, match="extra_allowed_globals"):
        ArtifactSettings(extra_allowed_globals="os.system")  # type: ignore[arg-type]


def test_inspection_imports_no_torch_or_onnx(tmp_path: Path) -> None:
    write_model(tmp_path, "model.pkl")
    header = json.dumps({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (tmp_path / "w.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 4)
    script = (
        "import sys, pathlib\n"
        "from pytest_aiml.artifacts.inspect import inspect_artifact\n"
        f"root = pathlib.Path({str(tmp_path)!r})\n"
        "files = ['model.pkl', 'w.safetensors']\n"
        "for name in files:\n"
        "    inspect_artifact(root / name, name, root=root, repo_files=files)\n"
        "print(sorted(m for m in ('torch', 'onnx', 'h5py', 'sklearn') if m in sys.modules))\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_repo_files_relative_posix(tmp_path: Path) -> None:
    write_model(tmp_path, "a/b/model.pkl")
    files = repo_files(tmp_path)
    result = inspect_artifact(tmp_path / "a/b/model.pkl", "a/b/model.pkl", root=tmp_path, repo_files=files)
    assert result.rel_path == "a/b/model.pkl"
    assert result.name == "model.pkl"


def test_fitted_dict_vectorizer_pickle_is_safe(tmp_path: Path) -> None:
    # A fitted DictVectorizer stores dtype=numpy.float64, a global every such pickle names.
    feature_extraction = pytest.importorskip("sklearn.feature_extraction")
    linear_model = pytest.importorskip("sklearn.linear_model")
    vectorizer = feature_extraction.DictVectorizer()
    features = vectorizer.fit_transform([{"distance": 1.5, "route": "a"}, {"distance": 3.0, "route": "b"}])
    regression = linear_model.LinearRegression().fit(features, [10.0, 20.0])
    path = tmp_path / "lin_reg.bin"
    path.write_bytes(pickle.dumps((vectorizer, regression)))
    inspection = inspect_artifact(path, "lin_reg.bin", root=tmp_path, repo_files=["lin_reg.bin"])
    assert inspection.checks["safety"].status == "pass", inspection.checks["safety"].details
    assert inspection.framework == "sklearn"
