"""Input generation from the ONNX signature and from declared inputs."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_aiml.serving.inputs import (
    check_signature,
    dynamic_axis_sizes,
    generate_input_groups,
    groups_from_samples,
    make_batch,
    signature_from_session,
)
from pytest_aiml.serving.loading import load_onnx_session
from pytest_aiml.serving.spec import InputSpec

FEATURES = InputSpec("features", "float32", ("batch", 8), min=-3.0, max=3.0)
TOKENS = InputSpec("tokens", "int64", ("batch", "sequence"), min=0, max=99)
MASK = InputSpec("mask", "bool", ("batch", "sequence"))


def test_signature_from_dynamo_export(exported):
    session = load_onnx_session(exported["cnn"].onnx_path)

    (spec,) = signature_from_session(session)

    assert spec.name == "image"
    assert spec.dtype == "float32"
    assert spec.shape[1:] == (3, 16, 16)
    assert isinstance(spec.shape[0], str)


def test_signature_of_fixed_batch_export(exported):
    session = load_onnx_session(exported["mlp_fixed_batch"].onnx_path)

    assert signature_from_session(session) == (InputSpec("features", "float32", (2, 8)),)


def test_at_least_two_groups_with_two_sizes():
    groups = generate_input_groups([FEATURES])

    assert len(groups) >= 2
    batch_sizes = [group.shapes()["features"][0] for group in groups]
    assert len(set(batch_sizes)) >= 2
    assert any(size > 1 for size in batch_sizes)


def test_export_size_is_avoided():
    sizes = dynamic_axis_sizes([FEATURES], export_sizes={"batch": 3})

    assert 3 not in sizes["batch"]
    assert any(size > 1 for size in sizes["batch"])


def test_inner_axes_use_larger_sizes():
    sizes = dynamic_axis_sizes([TOKENS])

    assert sizes["batch"] == (1, 3)
    assert all(size > 1 for size in sizes["sequence"])
    assert len(set(sizes["sequence"])) == 2


def test_shared_axis_names_share_sizes():
    for group in generate_input_groups([TOKENS, MASK]):
        shapes = group.shapes()
        assert shapes["tokens"] == shapes["mask"]


def test_fixed_seed_is_deterministic():
    first = generate_input_groups([FEATURES, TOKENS, MASK], seed=7)
    second = generate_input_groups([FEATURES, TOKENS, MASK], seed=7)
    other = generate_input_groups([FEATURES, TOKENS, MASK], seed=8)

    for a, b in zip(first, second):
        for (_, left), (_, right) in zip(a.arrays, b.arrays):
            np.testing.assert_array_equal(left, right)
    assert not np.array_equal(first[1].feed()["features"], other[1].feed()["features"])


def test_values_respect_dtype_and_bounds():
    for group in generate_input_groups([FEATURES, TOKENS, MASK], axis_sizes={"batch": [2, 50]}):
        features = group.feed()["features"]
        tokens = group.feed()["tokens"]
        assert features.dtype == np.float32
        assert features.min() >= -3.0
        assert features.max() <= 3.0
        assert tokens.dtype == np.int64
        assert tokens.min() >= 0
        assert tokens.max() <= 99
        assert group.feed()["mask"].dtype == np.bool_


def test_one_sided_bound_clips():
    spec = InputSpec("x", "float32", ("batch", 64), min=0.0)

    for group in generate_input_groups([spec]):
        assert group.feed()["x"].min() >= 0.0


def test_integers_default_to_zero_or_one():
    spec = InputSpec("ids", "int32", ("batch", 16))

    values = np.concatenate([g.feed()["ids"].ravel() for g in generate_input_groups([spec])])

    assert set(values.tolist()) <= {0, 1}


@pytest.mark.parametrize(
    ("override", "message"),
    [([3, 3], "two distinct sizes"), ([1, 2], "differs from the export size"), ([0, 4], "positive")],
)
def test_invalid_axis_override(override, message):
    with pytest.raises(ValueError, match=message):
        dynamic_axis_sizes([FEATURES], axis_sizes={"batch": override}, export_sizes={"batch": 2})


def test_override_with_more_sizes_adds_groups():
    groups = generate_input_groups([FEATURES], axis_sizes={"batch": [1, 4, 9]})

    assert [group.shapes()["features"][0] for group in groups] == [1, 4, 9]


def test_bfloat16_input_is_rejected_with_reason():
    with pytest.raises(ValueError, match="bfloat16"):
        generate_input_groups([InputSpec("x", "bfloat16", ("batch", 4))])


def test_make_batch_sets_leading_axis():
    group = make_batch([TOKENS, MASK], 5)

    assert group.shapes()["tokens"][0] == 5
    assert group.shapes()["mask"] == group.shapes()["tokens"]


def test_check_signature_reports_baked_batch():
    problems = check_signature([FEATURES], [InputSpec("features", "float32", (2, 8))])

    assert len(problems) == 1
    assert "declared dynamic ('batch') but the ONNX model fixes it to 2" in problems[0]


def test_check_signature_reports_name_dtype_and_rank():
    declared = [InputSpec("x", "float32", ("batch", 8)), InputSpec("y", "int64", ("batch",))]
    signature = [InputSpec("x", "float16", ("batch", 8, 1)), InputSpec("z", "int64", ("batch",))]

    problems = "\n".join(check_signature(declared, signature))

    assert "declared float32 but the ONNX model takes float16" in problems
    assert "rank 2 but the ONNX model takes rank 3" in problems
    assert "'y' is not an input of the ONNX model" in problems
    assert "ONNX inputs not declared: z" in problems


def test_check_signature_accepts_matching():
    assert check_signature([FEATURES], [InputSpec("features", "float32", ("N", 8))]) == ()


def test_samples_in_every_form():
    torch = pytest.importorskip("torch")
    samples = [np.zeros((2, 8)), torch.ones(3, 8), [[0.5] * 8]]

    groups = groups_from_samples(samples, ["features"], source="s:f")

    assert [group.shapes()["features"] for group in groups] == [[2, 8], [3, 8], [1, 8]]
    pair = groups_from_samples([{"a": [1], "b": [2]}, ([3], [4])], ["a", "b"], source="s:f")
    assert pair[1].feed()["b"].tolist() == [4]


@pytest.mark.parametrize(
    ("samples", "names", "message"),
    [
        ([], ["x"], "returned no batches"),
        ([{"a": [1]}], ["a", "b"], "lacks inputs"),
        ([([1], [2], [3])], ["a", "b"], "has 3 arrays"),
        ([np.zeros(2)], ["a", "b"], "return a dict"),
    ],
)
def test_bad_samples_are_explained(samples, names, message):
    with pytest.raises(ValueError, match=message):
        groups_from_samples(samples, names, source="s:f")
