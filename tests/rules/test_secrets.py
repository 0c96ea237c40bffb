"""AIML103: provider key formats, placeholders, masking, and that no output carries a whole key."""

from __future__ import annotations

import json

import pytest

from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.runner import analyze_text, applicable_rules
from pytest_aiml.rules.secrets import HardcodedSecret, is_placeholder, mask

# Keys are assembled at run time from made-up pieces, so no key-shaped literal sits in this file.
BODY = "Q7mZ2kLp9XvR4tNb8HcW3yJd6FgS1aEu5oKi0lPzMnBx"
HEX = "3f9a1c7e5b2d4860af1e3c7b9d5a2f8461c0e7d2"
KEYS = {
    "OpenAI API key": "sk-" + "proj-" + BODY,
    "Anthropic API key": "sk-" + "ant-admin01-" + BODY,
    "OpenAI-style API key": "sk-" + BODY,
    "Hugging Face token": "hf_" + BODY[:34],
    "Replicate API token": "r8_" + BODY[:37],
    "Groq API key": "gsk_" + BODY + "Vc9WqY2h",
    "Google API key": "AIza" + BODY[:35],
    "LangSmith API key": "lsv2_" + "sk_" + HEX[:32] + "_" + HEX[:10],
    "Pinecone API key": "pcsk_" + "4Hq2x" + "_" + BODY,
    "Together AI API key": "tgp_" + "v1_" + BODY,
}


def _findings(source: str, path: str = "app.py"):
    analysis = analyze_text(path, source, applicable_rules(path, source, [HardcodedSecret]), RepoContext())
    assert analysis.failure is None, analysis.failure
    return list(analysis.findings)


@pytest.mark.parametrize(("label", "key"), sorted(KEYS.items()))
def test_prefixed_key_recognised(label, key):
    findings = _findings(f"API_KEY = '{key}'\n")
    assert len(findings) == 1
    assert findings[0].message.startswith(f"{label} {mask(key)} is hardcoded")


@pytest.mark.parametrize(("label", "key"), sorted(KEYS.items()))
def test_key_never_in_message_or_snippet(label, key):
    finding = _findings(f"client = Client(api_key='{key}')  # prod\n")[0]
    assert key not in finding.message
    assert key not in finding.snippet
    assert key[6:-2] not in finding.render()
    assert finding.snippet == f"{label} {mask(key)}"


@pytest.mark.parametrize(
    ("source", "label"),
    [
        (f"import cohere\nco = cohere.Client('{BODY[:40]}')\n", "Cohere API key"),
        (f"from mistralai import Mistral\nm = Mistral(api_key='{BODY[:32]}')\n", "Mistral API key"),
        (f"MISTRAL_API_KEY = '{BODY[:32]}'\n", "Mistral API key"),
        ("import pinecone\npinecone.init(api_key='3f9a1c7e-5b2d-4860-af1e-3c7b9d5a2f84')\n", "Pinecone API key"),
        (f"import os\nos.environ.setdefault('WANDB_API_KEY', '{HEX}')\n", "Weights & Biases API key"),
        (f"settings = {{'COHERE_API_KEY': '{BODY[:40]}'}}\n", "Cohere API key"),
    ],
)
def test_unprefixed_key_needs_its_binding(source, label):
    findings = _findings(source)
    assert [finding.message.split(" ")[0] for finding in findings] == [label.split(" ")[0]]


@pytest.mark.parametrize(
    "source",
    [
        f"checksum = '{BODY[:40]}'\n",
        f"import cohere\nco = cohere.Client(api_key=key, base_url='{BODY[:40]}')\n",
        f"MISTRAL_API_KEY = '{BODY[:31]}'\n",
        f"from mistralai import Mistral\nm = Mistral(api_key=os.environ['MISTRAL_API_KEY'])\nrun_id = '{BODY[:32]}'\n",
    ],
)
def test_unbound_or_misshaped_value_ignored(source):
    assert _findings(source) == []


def test_aws_id_needs_secret():
    secret = "q7Mz2kLp9XvR4tNb8HcW3yJd6FgS1aEu/5oKi0lP"
    key_id = "AKIA" + "Q7MZ2KLP9XVR4TNB"
    assert _findings(f"AWS_ACCESS_KEY_ID = '{key_id}'\n") == []
    findings = _findings(f"AWS_ACCESS_KEY_ID = '{key_id}'\nAWS_SECRET_ACCESS_KEY = '{secret}'\n")
    assert [(finding.line, finding.message.split(" is ")[0]) for finding in findings] == [
        (1, f"AWS access key id {mask(key_id)}"),
        (2, f"AWS secret access key {mask(secret)}"),
    ]
    assert all(secret not in finding.render() and key_id not in finding.render() for finding in findings)


@pytest.mark.parametrize(
    "value",
    [
        "sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "hf_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh",
        "sk-proj-0123456789012345678901234567890123456789",
        "sk-proj-aaaaaaaaQ7mZ2kLp9XvR4tNb8HcW3yJd6FgS1aEu",
        "sk-ant-api03-<your-key-goes-here-and-nowhere-else>",
    ],
)
def test_placeholder_values(value):
    assert is_placeholder(value.split("-", 2)[-1] if value.startswith("sk-proj") else value)
    assert _findings(f"KEY = '{value}'\n") == []


def test_documented_aws_example_is_placeholder():
    assert is_placeholder("AKIA" + "IOSFODNN7EXAMPLE")


def test_example_marker_still_reported():
    # Documentation keys that spell EXAMPLE keep the key's format, and the rule reports the format.
    key = "sk-" + "proj-EXAMPLE" + BODY
    assert len(_findings(f"KEY = '{key}'\n")) == 1


def test_real_shaped_body_is_not_placeholder():
    assert not is_placeholder(KEYS["OpenAI API key"])


@pytest.mark.parametrize(("key", "masked"), [("sk-proj-Q7mZ2kLp9XvR4tNb", "sk-p…Nb"), ("hf_shortkey1", "hf_s…")])
def test_mask_shows_at_most_six_characters(key, masked):
    assert mask(key) == masked


def test_key_inside_longer_string():
    key = KEYS["Groq API key"]
    findings = _findings(f"curl = 'curl -H \"Authorization: Bearer {key}\" https://api.groq.com'\n")
    assert len(findings) == 1


def test_word_containing_prefix_ignored():
    assert _findings(f"name = 'mask-{BODY}'\n") == []


def test_notebook_cell_reported_masked():
    key = KEYS["Hugging Face token"]
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Fine-tuning\n"]},
            {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
             "source": ["from huggingface_hub import login\n", f"login(token='{key}')\n"]},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    findings = _findings(json.dumps(notebook), path="notebooks/train.ipynb")
    assert len(findings) == 1
    assert findings[0].message.startswith(f"cell 1: Hugging Face token {mask(key)}")
    assert key not in findings[0].snippet


def test_no_output_carries_the_key(pytester: pytest.Pytester):
    key = KEYS["OpenAI API key"]
    pytester.makepyfile(llm_client=f"from openai import OpenAI\nclient = OpenAI(api_key='{key}')\n")
    result = pytester.runpytest(
        "--aiml-only", "--aiml-select=AIML103", "--aiml-report=out/report.yaml", "--aiml-sarif=out/aiml.sarif",
        "--junitxml=out/junit.xml", "--aiml-baseline=out/baseline.json", "--aiml-baseline-update",
    )
    output = result.stdout.str() + result.stderr.str()
    assert key not in output
    written = [path for path in pytester.path.rglob("*") if path.is_file() and path.name != "llm_client.py"]
    assert any(path.name == "report.yaml" for path in written)
    assert any(path.name == "baseline.json" for path in written)
    for path in written:
        assert key not in path.read_text(encoding="utf-8", errors="replace"), path
    report = (pytester.path / "out" / "report.yaml").read_text(encoding="utf-8")
    assert mask(key) in report
