"""LLM practice rules and the report's ``llm_systems`` section on small repositories."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.discovery import discover
from pytest_aiml.engine.inventory import build_inventory
from pytest_aiml.engine.runner import analyze_text, applicable_rules
from pytest_aiml.report.build import llm_section
from pytest_aiml.report.writer import report_schema
from pytest_aiml.rules.llm_practice import (
    DangerousAgentTools,
    NoLlmCostTracking,
    NoLlmFallback,
    NoLlmGuardrails,
    cost_tracking_tools,
    fallback_paths,
    guardrail_tools,
    llm_modules,
)

CHAT_APP = (
    "import streamlit as st\nfrom openai import OpenAI\n\nclient = OpenAI()\nif prompt := st.chat_input():\n"
    "    reply = client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': prompt}])\n"
    "    st.write(reply.choices[0].message.content)\n"
)


def _inventory(tmp_path: Path, files: dict[str, str]):
    for relative, content in files.items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return build_inventory(discover(tmp_path))


def _file_messages(source: str, path: str = "agent.py") -> list[str]:
    analysis = analyze_text(path, source, applicable_rules(path, source, [DangerousAgentTools]), RepoContext())
    assert analysis.failure is None, analysis.failure
    return [finding.message for finding in analysis.findings]


# -- AIML303 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from langchain_community.tools import ShellTool as Shell\ntools = [Shell()]\n",
         "Shell() lets the agent run shell commands"),
        ("import langchain_experimental.tools as lt\ntool = lt.PythonAstREPLTool(locals={'df': df})\n",
         "lt.PythonAstREPLTool() lets the agent run Python code"),
        ("from langchain.agents import load_tools\ntools = load_tools(['requests_all'])\n",
         "load_tools() loads 'requests_all', which lets the agent send arbitrary HTTP requests"),
        ("from langchain_community.agent_toolkits.openapi.toolkit import OpenAPIToolkit\n"
         "toolkit = OpenAPIToolkit.from_llm(llm, spec, requests_wrapper, allow_dangerous_requests=True)\n",
         "allow_dangerous_requests=True in OpenAPIToolkit.from_llm() lets the agent send any HTTP request"),
        ("from agents import Agent, LocalShellTool\nagent = Agent(name='ops', tools=[LocalShellTool(executor=run)])\n",
         "LocalShellTool() lets the agent run shell commands"),
    ],
)
def test_dangerous_tool_named(source, expected):
    messages = _file_messages(source)
    assert len(messages) == 1
    assert messages[0].startswith(expected)


def test_dangerous_flag_without_agent_import_silent():
    # A flag of that name on a function of the project, with no agent framework imported.
    assert _file_messages("def load(allow_dangerous_code=False):\n    pass\nload(allow_dangerous_code=True)\n") == []


def test_create_pandas_agent_reported_once():
    source = (
        "from langchain_experimental.agents import create_pandas_dataframe_agent\n"
        "agent = create_pandas_dataframe_agent(llm, df, allow_dangerous_code=True)\n"
    )
    assert _file_messages(source) == ["create_pandas_dataframe_agent() lets the agent run Python code"]


# -- shared facts ---------------------------------------------------------------------------


def test_llm_modules_skip_tests_notebooks_and_embeddings(tmp_path):
    inventory = _inventory(
        tmp_path,
        {
            "app.py": CHAT_APP,
            "tests/test_app.py": CHAT_APP,
            "embed.py": "from openai import OpenAI\nOpenAI().embeddings.create(model='m', input=['a'])\n",
            "summarize.py": "def complete(text):\n    return text\ncomplete('x')\n",
        },
    )
    assert llm_modules(inventory) == ["app.py"]


def test_guardrails_need_both_input_and_output_validation(tmp_path):
    checks = "def validate_user_input(text):\n    return text\n"
    assert guardrail_tools(_inventory(tmp_path, {"app.py": CHAT_APP, "checks.py": checks})) == []
    checks += "def filter_response(text):\n    return text\n"
    assert guardrail_tools(_inventory(tmp_path, {"checks.py": checks})) == ["input and output validation functions"]


def test_lock_file_guardrail_pin_not_counted(tmp_path):
    inventory = _inventory(tmp_path, {"app.py": CHAT_APP, "poetry.lock": '[[package]]\nname = "llm-guard"\nversion = "0.3.0"\n'})
    assert guardrail_tools(inventory) == []


def test_cost_tracking_from_compose_setting(tmp_path):
    compose = "services:\n  api:\n    environment:\n      - LANGCHAIN_TRACING_V2=true\n"
    inventory = _inventory(tmp_path, {"app.py": CHAT_APP, "docker-compose.yml": compose})
    assert cost_tracking_tools(inventory) == ["tracing configured in docker-compose.yml"]


def test_fallback_retry_of_same_model_not_counted(tmp_path):
    retry = (
        "import openai\nfrom openai import OpenAI\nclient = OpenAI()\nMODEL = 'gpt-4o'\n"
        "def answer():\n    try:\n        return client.chat.completions.create(model=MODEL, messages=[])\n"
        "    except openai.RateLimitError:\n        return client.chat.completions.create(model=MODEL, messages=[])\n"
    )
    assert fallback_paths(_inventory(tmp_path, {"app.py": retry})) == []


def test_fallback_in_except_with_other_model(tmp_path):
    source = (
        "import anthropic\nfrom openai import OpenAI\n\ndef answer(messages):\n    try:\n"
        "        return OpenAI().chat.completions.create(model='gpt-4o', messages=messages)\n"
        "    except Exception:\n"
        "        return anthropic.Anthropic().messages.create(model='claude-sonnet-4-5', max_tokens=256, messages=messages)\n"
    )
    assert fallback_paths(_inventory(tmp_path, {"app.py": source})) == ["another model tried on failure in app.py"]


# -- repository rules -------------------------------------------------------------------------


def test_repo_rules_report_first_module_with_list(tmp_path):
    inventory = _inventory(tmp_path, {"pages/chat.py": CHAT_APP, "app.py": CHAT_APP})
    for rule in (NoLlmGuardrails, NoLlmCostTracking, NoLlmFallback):
        findings = list(rule().check(inventory))
        assert len(findings) == 1, rule.code
        assert findings[0].path == "app.py"
        assert "2 modules (app.py, pages/chat.py)" in findings[0].message


def test_fallback_message_names_models_of_llm_calls_only(tmp_path):
    feedback = "import trubrics\ntrubrics.collect(component_name='chat', model='gpt')\n"
    inventory = _inventory(tmp_path, {"app.py": CHAT_APP + feedback})
    (finding,) = NoLlmFallback().check(inventory)
    assert "(gpt-4o-mini)" in finding.message
    assert "'gpt'" not in finding.message


# -- report ---------------------------------------------------------------------------------


def _llm_schema() -> dict:
    return report_schema()["properties"]["aiml_analysis"]["properties"]["llm_systems"]


def test_llm_section_agrees_with_rules(tmp_path):
    inventory = _inventory(
        tmp_path,
        {
            "app.py": CHAT_APP + "    usage = reply.usage.total_tokens\n",
            "guard.py": "from llm_guard import scan_prompt\n",
            "prompts/system.txt": "You are helpful.\n",
        },
    )
    section = llm_section(inventory)
    jsonschema.validate(section, _llm_schema())
    assert section["present"] is True
    assert section["providers"] == ["openai"]
    assert section["prompt_management"] == "files"
    assert section["guardrails"] is True
    assert section["x_guardrails"] == ["llm-guard"]
    assert section["cost_tracking"] is True
    assert section["x_cost_tracking"] == ["token usage read from responses"]
    assert section["x_llm_modules"] == ["app.py"]
    assert section["x_fallbacks"] == []
    assert list(NoLlmGuardrails().check(inventory)) == []
    assert list(NoLlmCostTracking().check(inventory)) == []


def test_llm_section_without_llm(tmp_path):
    inventory = _inventory(tmp_path, {"pii.py": "from presidio_analyzer import AnalyzerEngine\n"})
    section = llm_section(inventory)
    jsonschema.validate(section, _llm_schema())
    assert section["present"] is False
    assert section["prompt_management"] == "none"
    # A PII scanner in a repository without an LLM guards no LLM.
    assert section["guardrails"] is False
    assert section["x_llm_modules"] == []
