"""LLM rules on cases beyond their own examples: prompt sinks, flow through names and shadowing."""

from __future__ import annotations

import pytest

from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.runner import analyze_text, applicable_rules
from pytest_aiml.rules.llm import LlmOutputExecuted, PromptInjection

OPENAI_APP = "from fastapi import FastAPI\nfrom openai import OpenAI\napp = FastAPI()\nclient = OpenAI()\n"
SHELL = "from openai import OpenAI\nimport json, os, subprocess\nclient = OpenAI()\n"
COMPLETION = "r = client.chat.completions.create(model='m', messages=[])\n"


def _messages(rule, source: str, path: str = "example.py") -> list[str]:
    analysis = analyze_text(path, source, applicable_rules(path, source, [rule]), RepoContext())
    assert analysis.failure is None, analysis.failure
    return [finding.message for finding in analysis.findings]


def _handler(signature: str, body: str) -> str:
    return OPENAI_APP + f"@app.post('/a')\ndef a({signature}):\n    " + body + "\n"


# -- AIML301 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            _handler("topic: str", "return [{'role': 'system', 'content': 'You help with {t}.'.format(t=topic)}]"),
            "the route handler argument 'topic' is formatted into the system prompt (the content of a 'system' message)",
        ),
        (
            _handler("rules: list[str]", "prompt = '\\n'.join(['Be safe.', *rules])\n"
                     "    return [{'role': 'developer', 'content': prompt}]"),
            "the content of a 'developer' message",
        ),
        (
            "from langchain.prompts import PromptTemplate\nfrom fastapi import FastAPI\napp = FastAPI()\n"
            "@app.post('/a')\ndef a(q: str):\n    return PromptTemplate(template=f'Answer {q} using {{context}}')\n",
            "the route handler argument 'q' is used as the prompt template of PromptTemplate()",
        ),
        (
            "from llama_index.core.llms import ChatMessage, MessageRole\nfrom fastapi import FastAPI\napp = FastAPI()\n"
            "@app.post('/a')\ndef a(persona: str):\n    return [ChatMessage(role=MessageRole.SYSTEM, content=f'You are {persona}')]\n",
            "(ChatMessage(role=system))",
        ),
        (
            "import google.generativeai as genai\nfrom flask import Flask, request\napp = Flask(__name__)\n"
            "@app.post('/a')\ndef a():\n    return genai.GenerativeModel('g', system_instruction='Persona: ' + request.form['p'])\n",
            "request.form is formatted into the system prompt (system_instruction= of genai.GenerativeModel())",
        ),
        (
            _handler("q: str", "return client.responses.create(model='m', instructions=f'Topic: {q}', input=q)"),
            "(instructions= of client.responses.create())",
        ),
    ],
)
def test_prompt_injection_reported(source, expected):
    messages = _messages(PromptInjection, source)
    assert len(messages) == 1
    assert expected in messages[0]


@pytest.mark.parametrize(
    "source",
    [
        # User text as the whole system prompt is not formatted into it: left to review.
        _handler("system: str", "return [{'role': 'system', 'content': system}]"),
        # Retrieved documents are not request text.
        _handler("q: str", "docs = retriever.invoke(q)\n    return [{'role': 'system', 'content': f'Context: {docs}'}]"),
        # An unknown function's result is unknown, not tainted.
        _handler("q: str", "clean = sanitize(q)\n    return [{'role': 'system', 'content': f'Topic: {clean}'}]"),
        _handler("q: str", "return [{'role': 'user', 'content': f'Question: {q}'}]"),
        OPENAI_APP + "def build(q):\n    return [{'role': 'system', 'content': f'About {q}'}]\n",
        "from fastapi import FastAPI, Depends\nfrom openai import OpenAI\napp = FastAPI()\n"
        "@app.post('/a')\ndef a(user=Depends(current_user)):\n    return [{'role': 'system', 'content': f'User {user.name}'}]\n",
        "from langchain_core.prompts import ChatPromptTemplate\nfrom fastapi import FastAPI\napp = FastAPI()\n"
        "@app.post('/a')\ndef a(q: str):\n    p = ChatPromptTemplate.from_template('Answer: {q}')\n    return p.format(q=q)\n",
        # A ('system', ...) tuple outside ChatPromptTemplate.from_messages is just a tuple.
        _handler("q: str", "return ('system', f'About {q}')"),
    ],
)
def test_prompt_injection_silent(source):
    assert _messages(PromptInjection, source) == []


def test_prompt_injection_needs_llm_client_import():
    source = "from fastapi import FastAPI\napp = FastAPI()\n@app.post('/a')\ndef a(q: str):\n" \
             "    return [{'role': 'system', 'content': f'About {q}'}]\n"
    assert _messages(PromptInjection, source) == []


def test_prompt_injection_name_rebound_to_constant():
    body = "prompt = f'You are {persona}'\n    prompt = 'You are helpful.'\n    return [{'role': 'system', 'content': prompt}]"
    assert _messages(PromptInjection, _handler("persona: str", body)) == []


# -- AIML302 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (SHELL + COMPLETION + "plan = json.loads(r.choices[0].message.content)\nexec(plan['code'])\n", "exec()"),
        (SHELL + "r = client.responses.create(model='m', input='x')\nexec(f'result = {r.output_text}')\n",
         "client.responses.create()"),
        (SHELL + "r = get_client().chat.completions.create(model='m', messages=[])\nos.system(r.choices[0].message.content)\n",
         "os.system() runs the output of the LLM call chat.completions.create() as a shell command"),
        (SHELL + "async def f(aclient):\n    r = await aclient.chat.completions.create(model='m', messages=[])\n"
         "    exec(r.choices[0].message.content)\n", "aclient.chat.completions.create()"),
        (SHELL + COMPLETION + "subprocess.run(['python', '-c', r.choices[0].message.content])\n", "subprocess.run()"),
        (SHELL + COMPLETION + "subprocess.run(['python', '-'], input=r.choices[0].message.content)\n", "subprocess.run()"),
        (SHELL + COMPLETION + "code = compile(r.choices[0].message.content, 'gen', 'exec')\n", "compile()"),
        ("from langchain.chains import LLMChain\nimport os\nout = qa_chain.run('list files')\nos.popen(out)\n", "qa_chain.run()"),
    ],
)
def test_llm_output_executed_reported(source, expected):
    messages = _messages(LlmOutputExecuted, source)
    assert len(messages) == 1
    assert expected in messages[0]


@pytest.mark.parametrize(
    "source",
    [
        SHELL + COMPLETION + "code = extract_code(r.choices[0].message.content)\nexec(code)\n",
        SHELL + COMPLETION + "subprocess.run(['ls'], cwd=r.choices[0].message.content)\n",
        SHELL + "def f():\n    r = client.chat.completions.create(model='m', messages=[])\n    r = 'ls'\n    os.system(r)\n",
        SHELL + "def f():\n    r = client.chat.completions.create(model='m', messages=[])\ndef g(r):\n    os.system(r)\n",
        SHELL + "def eval(x):\n    return x\n" + COMPLETION + "eval(r)\n",
        SHELL + COMPLETION + "print(r.choices[0].message.content)\n",
        # .run() on a receiver that is not named as a chain, agent or LLM is not an LLM call.
        SHELL + "out = session.run(None, feeds)\nos.system(out)\n",
    ],
)
def test_llm_output_executed_silent(source):
    assert _messages(LlmOutputExecuted, source) == []


# -- helpers, loops and commands ------------------------------------------------------------


def test_prompt_injection_through_method_helper():
    source = OPENAI_APP + (
        "class Bot:\n    def system(self, persona):\n        return [{'role': 'system', 'content': f'You are {persona}'}]\n"
        "    def reply(self, persona):\n        return self.system(persona)\n"
        "@app.post('/a')\ndef a(persona: str):\n    return helper(persona)\n"
        "def helper(p):\n    return [{'role': 'system', 'content': 'Be brief. ' + p}]\n"
    )
    messages = _messages(PromptInjection, source)
    # Inside the class, the method's parameter is not user text. The module function's parameter is, through the route.
    assert messages == [
        "the route handler argument 'persona' is passed to helper(), which formats it into the system prompt "
        "(the content of a 'system' message)"
    ]


def test_prompt_injection_two_levels_not_followed():
    body = "return outer(q)"
    source = _handler("q: str", body) + "def outer(x):\n    return inner(x)\n" \
        "def inner(y):\n    return [{'role': 'system', 'content': f'About {y}'}]\n"
    assert _messages(PromptInjection, source) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (SHELL + "import asyncio\nasync def f():\n    r = await client.chat.completions.create(model='m', messages=[])\n"
         "    await asyncio.create_subprocess_exec('bash', '-c', r.choices[0].message.content)\n",
         "asyncio.create_subprocess_exec() runs the output"),
        (SHELL + COMPLETION + "cmd = ['sh', '-c', r.choices[0].message.content]\nsubprocess.run(cmd)\n",
         "subprocess.run() runs the output"),
        (SHELL + COMPLETION + "words = r.choices[0].message.content.split()\nsubprocess.run(words)\n",
         "subprocess.run() runs the output"),
    ],
)
def test_llm_output_command_reported(source, expected):
    messages = _messages(LlmOutputExecuted, source)
    assert len(messages) == 1
    assert messages[0].startswith(expected)


def test_llm_output_as_program_argument_silent():
    source = SHELL + COMPLETION + "subprocess.run(['say', r.choices[0].message.content])\n" \
        "subprocess.run(['python', 'render.py', r.choices[0].message.content])\n"
    assert _messages(LlmOutputExecuted, source) == []
