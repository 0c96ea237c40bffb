"""LLM practice rules: agents with dangerous tools, and the guardrails, cost tracking and fallback an LLM application needs.

The repository rules share one notion of an LLM module: a non-test Python module that
imports an LLM client or framework and calls a model (or builds a chat model). The
report's ``llm_systems`` section reads the same facts through the functions below, so
the report and the findings agree.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from pytest_aiml.engine.ast_facts import callee_name
from pytest_aiml.engine.context import ModuleContext, call_argument, is_false, is_true, keyword_value
from pytest_aiml.engine.discovery import is_test_path
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.inventory import Inventory
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority, RepoRule
from pytest_aiml.engine.signals import group_members
from pytest_aiml.rules.flow import attribute_text, dotted_text
from pytest_aiml.rules.llm import LLM_CALL_SUFFIXES

_SHOWN_FILES = 5


# -- facts shared by the repository rules and the report -----------------------------


def llm_modules(inventory: Inventory) -> list[str]:
    """Return the non-test Python modules that call an LLM, in path order."""
    return [
        signals.path
        for signals in inventory.code
        if "llm_call" in signals.signals
        and not signals.path.endswith(".ipynb")
        and not is_test_path(signals.path)
        and (group_members(signals, "llm_provider") or group_members(signals, "llm_framework"))
    ]


#: Guardrail packages as dependency files name them. A direct requirement counts even
#: where configuration, not an import, drives the package.
GUARDRAIL_PACKAGES = ("nemoguardrails", "guardrails-ai", "llm-guard", "rebuff", "lakera-chainguard", "presidio-analyzer")


def guardrail_tools(inventory: Inventory) -> list[str]:
    """Name the input and output filters the repository uses, or return an empty list."""
    found = list(inventory.labels("guardrails"))
    if inventory.files_with("moderation"):
        found.append("moderation endpoint")
    if inventory.files_with("safety_classifier"):
        found.append("safety classifier")
    if inventory.files_with("guardrail_layer"):
        found.append("guardrail layer")
    if inventory.files_with("input_guard") and inventory.files_with("output_guard"):
        found.append("input and output validation functions")
    for package in GUARDRAIL_PACKAGES:
        if _directly_required(inventory, package) and package not in found:
            found.append(package)
    return found


#: Files where LLM tracing is switched on by configuration: LangSmith and Langfuse read
#: their settings from the environment, so an application may never import them.
_TRACING_SETTING = re.compile(r"LANGCHAIN_TRACING_V2|LANGSMITH_TRACING|LANGFUSE_(PUBLIC|SECRET)_KEY|HELICONE_API_KEY")
_SETTINGS_FILE = re.compile(r"(^|/)(\.env[\w.-]*|[\w.-]*\.env|docker-compose[\w.-]*\.ya?ml|compose\.ya?ml)$")


def cost_tracking_tools(inventory: Inventory) -> list[str]:
    """Name the ways the repository reads or records LLM token usage, or return an empty list."""
    found = list(inventory.labels("llm_cost"))
    if inventory.files_with("llm_usage"):
        found.append("token usage read from responses")
    if inventory.files_with("llm_tracing"):
        found.append("LLM tracing")
    budgeted = [
        signals.path for signals in inventory.code
        if signals.imports("tiktoken") and "token_budget" in signals.signals and not is_test_path(signals.path)
    ]
    if budgeted:
        found.append("tiktoken token budget")
    for path in inventory.repo.paths:
        if _SETTINGS_FILE.search(path):
            text = inventory.repo.read_text(path, limit=200_000)
            if text is not None and _TRACING_SETTING.search(text):
                found.append(f"tracing configured in {path}")
                break
    return found


def fallback_paths(inventory: Inventory, modules: list[str] | None = None) -> list[str]:
    """Describe where LLM calls fall back to another model, or return an empty list."""
    modules = llm_modules(inventory) if modules is None else modules
    found = [
        f"fallback configuration in {signals.path}"
        for signals in inventory.code
        if "llm_fallback" in signals.signals
        and not is_test_path(signals.path)
        and (group_members(signals, "llm_provider") or group_members(signals, "llm_framework"))
    ]
    for path in modules:
        text = inventory.repo.read_text(path)
        if text is None:
            continue
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError):
            continue
        if _tries_another_model(tree):
            found.append(f"another model tried on failure in {path}")
    for path in inventory.repo.paths:
        # A LiteLLM proxy configuration declares its fallbacks in YAML.
        if path.endswith((".yaml", ".yml")) and not is_test_path(path):
            text = inventory.repo.read_text(path, limit=200_000)
            if text is not None and "model_list" in text and re.search(r"^\s*(context_window_)?fallbacks\s*:", text, re.MULTILINE):
                found.append(f"LiteLLM fallbacks in {path}")
    return found


def _is_llm_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in ("completion", "acompletion")
    if not isinstance(func, ast.Attribute):
        return False
    written = ast.unparse(func)
    return written.endswith(LLM_CALL_SUFFIXES) or func.attr in ("invoke", "ainvoke", "completion", "acompletion")


def _model_argument(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg in ("model", "model_name", "model_id"):
            return ast.dump(keyword.value)
    return None


def _tries_another_model(tree: ast.AST) -> bool:
    """Tell whether a module calls a second model when a call fails.

    Two shapes count: an ``except`` block that calls a model other than the one its
    ``try`` called (a retry of the same model is no fallback), and a loop over models
    whose body tries each one.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            tried = {_model_argument(call) for call in _calls_in(node.body) if _is_llm_call(call)}
            for handler in node.handlers:
                for call in _calls_in(handler.body):
                    if _is_llm_call(call) and (_model_argument(call) is None or _model_argument(call) not in tried):
                        return True
        elif isinstance(node, (ast.For, ast.AsyncFor)) and isinstance(node.target, ast.Name):
            loop_name = ast.dump(ast.Name(id=node.target.id, ctx=ast.Load()))
            for inner in ast.walk(node):
                if isinstance(inner, ast.Try) and any(
                    _is_llm_call(call) and _model_argument(call) == loop_name for call in _calls_in(inner.body)
                ):
                    return True
    return False


def _calls_in(statements: list[ast.stmt]) -> Iterator[ast.Call]:
    for statement in statements:
        for node in ast.walk(statement):
            if isinstance(node, ast.Call):
                yield node


def _directly_required(inventory: Inventory, package: str) -> bool:
    # Lock files list transitive dependencies too, so only direct requirements count.
    return any("lock" not in pin.source.rsplit("/", 1)[-1] for pin in inventory.pins.get(package, ()))


def _module_list(paths: list[str]) -> str:
    shown = ", ".join(paths[:_SHOWN_FILES])
    more = len(paths) - _SHOWN_FILES
    count = "1 module" if len(paths) == 1 else f"{len(paths)} modules"
    return f"{count} ({shown}{f' and {more} more' if more > 0 else ''})"


# -- AIML303 dangerous-agent-tools ---------------------------------------------------

#: Tool classes by name, with what they let the model do.
DANGEROUS_TOOLS = {
    "ShellTool": "run shell commands", "BashProcess": "run shell commands", "LocalShellTool": "run shell commands",
    "PythonREPLTool": "run Python code", "PythonAstREPLTool": "run Python code", "PythonREPL": "run Python code",
    "CodeInterpreterToolSpec": "run Python code", "LocalCommandLineCodeExecutor": "run generated code on the host",
    "WriteFileTool": "write files", "DeleteFileTool": "delete files", "MoveFileTool": "move files",
    "CopyFileTool": "copy files", "RequestsToolkit": "send arbitrary HTTP requests",
    "RequestsGetTool": "send arbitrary HTTP requests", "RequestsPostTool": "send arbitrary HTTP requests",
    "RequestsPutTool": "send arbitrary HTTP requests", "RequestsPatchTool": "send arbitrary HTTP requests",
    "RequestsDeleteTool": "send arbitrary HTTP requests",
    # Agents built around a Python REPL over a dataframe or a file.
    "create_pandas_dataframe_agent": "run Python code", "create_csv_agent": "run Python code",
    "create_spark_dataframe_agent": "run Python code", "create_python_agent": "run Python code",
}
#: Packages whose tools those names must come from: an agent framework, not a class of the project.
TOOL_PACKAGES = (
    "langchain", "langchain_community", "langchain_experimental", "llama_index", "autogen", "autogen_ext",
    "agents", "crewai", "crewai_tools",
)
#: Tool names of LangChain's ``load_tools`` that reach the shell, an interpreter or the network.
DANGEROUS_TOOL_NAMES = {
    "terminal": "run shell commands", "python_repl": "run Python code", "requests_all": "send arbitrary HTTP requests",
    "requests": "send arbitrary HTTP requests", "requests_get": "send arbitrary HTTP requests",
    "requests_post": "send arbitrary HTTP requests", "requests_put": "send arbitrary HTTP requests",
    "requests_patch": "send arbitrary HTTP requests", "requests_delete": "send arbitrary HTTP requests",
}
#: Opt-ins of LangChain (and LangChain-style) constructors to behaviour that is unsafe with untrusted input.
DANGEROUS_FLAGS = {
    "allow_dangerous_code": "lets the agent run the Python code the model writes",
    "allow_dangerous_requests": "lets the agent send any HTTP request the model writes",
    "allow_dangerous_deserialization": "unpickles the stored file, which runs any code a tampered file contains",
    "allow_dangerous_tools": "loads tools that run commands or code",
}
#: The tools of ``FileManagementToolkit`` that only read.
READ_ONLY_FILE_TOOLS = frozenset({"read_file", "list_directory", "file_search"})


class DangerousAgentTools(FileRule):
    """Flag agents given a shell, a Python interpreter, file writes or arbitrary HTTP requests."""

    code = "AIML303"
    slug = "dangerous-agent-tools"
    category = Category.SECURITY
    priority = Priority.HIGH
    effort = Effort.MEDIUM
    anti_pattern = "Prompt injection vulnerability (LLM)"
    message = "an LLM agent is given a tool that runs commands or code, writes files or sends arbitrary requests"
    impact = (
        "A prompt injection (in user text, a retrieved document or a web page) turns into commands, code, "
        "file changes or requests run with the application's permissions and credentials."
    )
    fix = (
        "Give agents narrow tools that validate their arguments (a read-only query, a fixed API call) instead of a "
        "shell, a REPL or generic HTTP; where code must run, use a sandbox without credentials or network "
        "(a container executor, a remote code interpreter); keep allow_dangerous_* off for untrusted input and "
        "require human approval for actions with side effects."
    )
    prefilter = (
        *DANGEROUS_TOOLS, "load_tools", "allow_dangerous", "FileManagementToolkit", "use_docker",
    )
    applies_to_tests = False

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.qualified_name(node.func)
        written = attribute_text(node.func) if isinstance(node.func, cst.Attribute) else dotted_text(node.func) or "call"
        name = qualified.rsplit(".", 1)[-1] if _from_agent_package(qualified) else None
        if name in DANGEROUS_TOOLS:
            self.report(node, f"{written}() lets the agent {DANGEROUS_TOOLS[name]}")
            return
        for arg in node.args:
            if arg.keyword is not None and arg.keyword.value in DANGEROUS_FLAGS and is_true(arg.value):
                if _from_agent_package(qualified) or self._imports_agent_package():
                    flag = arg.keyword.value
                    self.report(node, f"{flag}=True in {written}() {DANGEROUS_FLAGS[flag]}")
        if name is None:
            return
        if name == "FileManagementToolkit":
            self._check_file_toolkit(node, written)
        elif name == "load_tools":
            self._check_load_tools(node, written)
        self._check_local_executor(node, written)

    def _imports_agent_package(self) -> bool:
        return any(module.startswith(TOOL_PACKAGES) for module in self.context.imported_modules())

    def _check_file_toolkit(self, node: cst.Call, written: str) -> None:
        selected = keyword_value(node, "selected_tools")
        if isinstance(selected, (cst.List, cst.Tuple)):
            names = [self.context.string_value(element.value) for element in selected.elements]
            writers = [name for name in names if name not in READ_ONLY_FILE_TOOLS]
            if not writers:
                return
            if all(name is not None for name in writers):
                self.report(node, f"{written}(selected_tools=...) lets the agent use {', '.join(writers)}")
            return
        if selected is not None:
            # A selection built elsewhere cannot be read here: unknown, not reported.
            return
        self.report(node, f"{written}() without a read-only selected_tools lets the agent write, move and delete files")

    def _check_load_tools(self, node: cst.Call, written: str) -> None:
        names = call_argument(node, 0, "tool_names")
        if names is None or not isinstance(names.value, (cst.List, cst.Tuple)):
            return
        for element in names.value.elements:
            tool = self.context.string_value(element.value)
            if tool in DANGEROUS_TOOL_NAMES:
                self.report(node, f"{written}() loads '{tool}', which lets the agent {DANGEROUS_TOOL_NAMES[tool]}")

    def _check_local_executor(self, node: cst.Call, written: str) -> None:
        # AutoGen runs generated code on the host when code execution is configured
        # with ``use_docker=False``.
        config = keyword_value(node, "code_execution_config")
        if not isinstance(config, cst.Dict):
            return
        for element in config.elements:
            if (
                isinstance(element, cst.DictElement) and self.context.string_value(element.key) == "use_docker"
                and is_false(element.value)
            ):
                self.report(node, f"{written}(code_execution_config={{'use_docker': False}}) runs generated code on the host")


def _from_agent_package(qualified: str | None) -> bool:
    return qualified is not None and qualified.split(".", 1)[0] in TOOL_PACKAGES and "." in qualified


DangerousAgentTools.VALID = (
    Example(
        """\
from langchain_community.agent_toolkits import FileManagementToolkit

tools = FileManagementToolkit(root_dir="docs", selected_tools=["read_file", "list_directory"]).get_tools()
"""
    ),
    Example(
        """\
from langchain_community.tools import DuckDuckGoSearchRun, WikipediaQueryRun
from langchain.agents import load_tools

tools = load_tools(["wikipedia", "llm-math"], llm=llm) + [DuckDuckGoSearchRun()]
"""
    ),
    Example(
        """\
from langchain_community.vectorstores import FAISS

# The flag is off: loading a pickled index is refused.
store = FAISS.load_local("index", embeddings, allow_dangerous_deserialization=False)
"""
    ),
    Example(
        """\
import autogen

executor = autogen.UserProxyAgent("executor", code_execution_config={"work_dir": "out", "use_docker": True})
"""
    ),
    Example(
        """\
class ShellTool:
    # The project's own class of that name, not LangChain's.
    def run(self, command):
        raise PermissionError(command)


tool = ShellTool()
"""
    ),
    Example(
        """\
from langchain_community.agent_toolkits import FileManagementToolkit

# A selection built elsewhere cannot be read here.
tools = FileManagementToolkit(root_dir="work", selected_tools=settings.file_tools).get_tools()
"""
    ),
    Example(
        """\
from langchain_community.tools import ShellTool


def test_shell_tool_runs():
    assert ShellTool().run({"commands": ["echo hi"]})
""",
        path="tests/test_tools.py",
    ),
)
DangerousAgentTools.INVALID = (
    Example(
        """\
from langchain_community.tools import ShellTool
from langchain_experimental.tools import PythonREPLTool
from langgraph.prebuilt import create_react_agent

agent = create_react_agent(llm, tools=[ShellTool(), PythonREPLTool()])
""",
        lines=(5,),
    ),
    Example(
        """\
from langchain.agents import load_tools

tools = load_tools(["terminal", "wikipedia"], llm=llm, allow_dangerous_tools=True)
""",
        lines=(3,),
    ),
    Example(
        """\
from langchain_community.agent_toolkits import FileManagementToolkit, RequestsToolkit
from langchain_community.utilities.requests import TextRequestsWrapper

files = FileManagementToolkit(root_dir="/srv/app").get_tools()
web = RequestsToolkit(requests_wrapper=TextRequestsWrapper(headers={}), allow_dangerous_requests=True)
""",
        lines=(4, 5),
    ),
    Example(
        """\
from langchain_experimental.agents import create_pandas_dataframe_agent
from langchain_community.vectorstores import FAISS

agent = create_pandas_dataframe_agent(llm, df, allow_dangerous_code=True)
store = FAISS.load_local("index", embeddings, allow_dangerous_deserialization=True)
""",
        lines=(4, 5),
    ),
    Example(
        """\
from llama_index.tools.code_interpreter import CodeInterpreterToolSpec
from llama_index.core.agent import ReActAgent

agent = ReActAgent.from_tools(CodeInterpreterToolSpec().to_tool_list(), llm=llm)
""",
        lines=(4,),
    ),
    Example(
        """\
from autogen_ext.code_executors.local import LocalCommandLineCodeExecutor
import autogen

executor = LocalCommandLineCodeExecutor(work_dir="coding")
proxy = autogen.UserProxyAgent("proxy", code_execution_config={"work_dir": "coding", "use_docker": False})
""",
        lines=(4, 5),
    ),
    Example(
        """\
from langchain_community.agent_toolkits import FileManagementToolkit

tools = FileManagementToolkit(root_dir="work", selected_tools=["read_file", "write_file"]).get_tools()
""",
        lines=(3,),
    ),
)


# -- AIML304 no-llm-guardrails -------------------------------------------------------


class NoLlmGuardrails(RepoRule):
    """Flag an LLM application with no input or output filtering layer."""

    code = "AIML304"
    slug = "no-llm-guardrails"
    category = Category.SECURITY
    priority = Priority.HIGH
    effort = Effort.MEDIUM
    anti_pattern = "Prompt injection vulnerability (LLM)"
    message = "the application calls an LLM with no input or output filtering layer"
    impact = (
        "Nothing stops a prompt injection, a jailbreak or harmful content on the way in, nor leaked secrets, "
        "personal data or unsafe content on the way out: the model's own behaviour is the only control."
    )
    fix = (
        "Screen what reaches the model and what it returns: a guardrail library (NeMo Guardrails, Guardrails AI, "
        "LLM Guard, Rebuff, Lakera Guard), a moderation call (client.moderations.create), a classifier such as "
        "Llama Guard, Presidio for personal data, or your own validation functions applied to both input and output."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        modules = llm_modules(inventory)
        if not modules or guardrail_tools(inventory):
            return
        yield Finding(
            code=self.code,
            path=modules[0],
            message=(
                f"LLM calls in {_module_list(modules)} and no input or output filtering: no guardrail library, "
                "moderation call, safety classifier or validation of both input and output is used anywhere"
            ),
        )


_CHAT_APP = (
    "import streamlit as st\nfrom openai import OpenAI\n\nclient = OpenAI()\nif prompt := st.chat_input():\n"
    "    reply = client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': prompt}])\n"
    "    st.write(reply.choices[0].message.content)\n"
)

NoLlmGuardrails.VALID = (
    Example(
        files={
            "app.py": _CHAT_APP + "    flagged = client.moderations.create(input=prompt).results[0].flagged\n",
        }
    ),
    Example(
        files={
            "app.py": _CHAT_APP,
            "guard.py": "from nemoguardrails import LLMRails, RailsConfig\n\n"
            "rails = LLMRails(RailsConfig.from_path('config'))\n",
        }
    ),
    Example(
        files={
            "app.py": _CHAT_APP,
            "safety.py": "from llm_guard import scan_output, scan_prompt\n",
        }
    ),
    Example(
        files={
            "app.py": _CHAT_APP,
            "checks.py": "def validate_user_input(text):\n    return len(text) < 2000 and 'ignore previous' not in text.lower()\n\n\n"
            "def validate_model_output(text):\n    return 'BEGIN PRIVATE KEY' not in text\n",
        }
    ),
    Example(files={"app.py": _CHAT_APP, "requirements.txt": "openai\nguardrails-ai>=0.5\n"}),
    Example(
        files={
            "app.py": _CHAT_APP,
            "moderation.py": "from transformers import pipeline\n\n"
            "classifier = pipeline('text-generation', model='meta-llama/Llama-Guard-3-1B')\n",
        }
    ),
    # No LLM call: only embeddings.
    Example(files={"index.py": "from openai import OpenAI\n\nvectors = OpenAI().embeddings.create(model='m', input=['a'])\n"}),
    # LLM calls only in tests.
    Example(files={"tests/test_app.py": _CHAT_APP}),
)
NoLlmGuardrails.INVALID = (
    Example(files={"app.py": _CHAT_APP}),
    Example(
        files={
            "backend/chain.py": "from langchain_openai import ChatOpenAI\n\nllm = ChatOpenAI(model='gpt-4o')\n",
            "backend/server.py": "from fastapi import FastAPI\nfrom backend.chain import llm\n\napp = FastAPI()\n",
            # Validation of input alone is not a filtering layer for what the model returns.
            "backend/checks.py": "def validate_user_input(text):\n    return len(text) < 2000\n",
        }
    ),
    Example(
        files={
            "bot.py": "import anthropic\n\nclient = anthropic.Anthropic()\n"
            "msg = client.messages.create(model='claude-sonnet-4-5', max_tokens=100, messages=[])\n",
            "tests/test_bot.py": "import openai\nopenai.moderations.create(input='x')\n",
        }
    ),
)


# -- AIML305 no-llm-cost-tracking ----------------------------------------------------


class NoLlmCostTracking(RepoRule):
    """Flag LLM calls whose token usage is never read or recorded."""

    code = "AIML305"
    slug = "no-llm-cost-tracking"
    category = Category.MONITORING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    anti_pattern = "No cost tracking for inference"
    message = "LLM calls are made but their token usage is never read or recorded"
    impact = (
        "Spend grows with traffic, prompt length and retries without anyone seeing it: a looping agent or a "
        "larger context shows up only on the invoice, and no request or feature can be priced."
    )
    fix = (
        "Record token usage per call: read response.usage (OpenAI, Anthropic) or usage_metadata (LangChain), "
        "use get_openai_callback or a callback handler, litellm's completion_cost or success_callback, or a tracing "
        "service that records it (LangSmith, Langfuse, Helicone, OpenLLMetry, Phoenix, PromptLayer); alert on a budget."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        modules = llm_modules(inventory)
        if not modules or cost_tracking_tools(inventory):
            return
        yield Finding(
            code=self.code,
            path=modules[0],
            message=(
                f"LLM calls in {_module_list(modules)} and token usage is never read or recorded: no response.usage, "
                "usage_metadata, usage callback or LLM tracing (LangSmith, Langfuse, Helicone, OpenLLMetry, Phoenix)"
            ),
        )


NoLlmCostTracking.VALID = (
    Example(files={"app.py": _CHAT_APP + "    tokens = reply.usage.total_tokens\n"}),
    Example(
        files={
            "chain.py": "from langchain_community.callbacks import get_openai_callback\n"
            "from langchain_openai import ChatOpenAI\n\nllm = ChatOpenAI()\nwith get_openai_callback() as cb:\n"
            "    llm.invoke('Hi')\nprint(cb.total_cost)\n",
        }
    ),
    Example(
        files={
            "app.py": _CHAT_APP,
            "observability.py": "from langfuse.openai import openai\n",
        }
    ),
    Example(files={"app.py": _CHAT_APP, ".env.example": "OPENAI_API_KEY=\nLANGSMITH_TRACING=true\n"}),
    Example(
        files={
            "llm.py": "import litellm\n\nlitellm.success_callback = ['langfuse']\n"
            "reply = litellm.completion(model='gpt-4o', messages=[])\n",
        }
    ),
    Example(
        files={
            "app.py": _CHAT_APP,
            "budget.py": "import tiktoken\n\nMAX_BUDGET_TOKENS = 50_000\nencoding = tiktoken.encoding_for_model('gpt-4o')\n",
        }
    ),
    Example(files={"notebooks/try_openai.ipynb": "{}", "tests/test_app.py": _CHAT_APP}),
)
NoLlmCostTracking.INVALID = (
    Example(files={"app.py": _CHAT_APP}),
    Example(
        files={
            "rag/query.py": "from llama_index.core import VectorStoreIndex\n\n"
            "engine = VectorStoreIndex.from_documents(docs).as_query_engine()\n",
            # tiktoken used to split text, with no budget, is not cost tracking.
            "rag/chunks.py": "import tiktoken\n\nencoding = tiktoken.get_encoding('cl100k_base')\n",
        }
    ),
)


# -- AIML306 no-llm-fallback ---------------------------------------------------------


class NoLlmFallback(RepoRule):
    """Flag a served LLM application whose model calls have no fallback path."""

    code = "AIML306"
    slug = "no-llm-fallback"
    category = Category.SERVING
    priority = Priority.HIGH
    effort = Effort.LOW
    anti_pattern = "No fallback model"
    message = "the LLM application calls its model with no fallback to another model"
    impact = (
        "A provider outage, a rate limit or a deprecated model name takes the whole application down, because every "
        "request depends on one model of one provider."
    )
    fix = (
        "Give each LLM call a fallback: llm.with_fallbacks([other_llm]) in LangChain, fallbacks=[...] or a Router "
        "in LiteLLM, models=[...] on OpenRouter, FallbackModel in pydantic-ai, or call a second model (another "
        "provider or region) in the except block of the first call."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        modules = llm_modules(inventory)
        # Only served applications need one: a script or a batch job can be rerun.
        served = [
            signals.path for signals in inventory.code
            if group_members(signals, "serving_framework") and not is_test_path(signals.path)
        ]
        if not modules or not served or fallback_paths(inventory, modules):
            return
        models = _model_names(inventory, modules)
        named = f" ({', '.join(models[:_SHOWN_FILES])})" if models else ""
        yield Finding(
            code=self.code,
            path=modules[0],
            message=(
                f"LLM calls in {_module_list(modules)} go to one model each{named} with no fallback: no with_fallbacks(), "
                "LiteLLM fallbacks or Router, or second model called when the first fails"
            ),
        )


#: Keywords that name the model of an LLM call or chat model constructor.
MODEL_KEYWORDS = frozenset({"model", "model_name", "model_id"})


def _model_names(inventory: Inventory, modules: list[str]) -> list[str]:
    """Return the model names that LLM calls of the modules write as literals, sorted, for the message."""
    names: set[str] = set()
    for path in modules:
        try:
            tree = ast.parse(inventory.repo.read_text(path) or "")
        except (SyntaxError, ValueError, RecursionError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not (_is_llm_call(node) or _is_chat_model(node)):
                continue
            for keyword in node.keywords:
                if keyword.arg in MODEL_KEYWORDS and isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
                    names.add(keyword.value.value)
    return sorted(names)


def _is_chat_model(call: ast.Call) -> bool:
    name = callee_name(call.func) or ""
    return name.startswith("Chat") or name.endswith(("OpenAI", "Anthropic", "LLM")) or name in ("init_chat_model", "GenerativeModel")


_LANGCHAIN_SERVER = (
    "from fastapi import FastAPI\nfrom langchain_openai import ChatOpenAI\n\napp = FastAPI()\n"
    "llm = ChatOpenAI(model='gpt-4o')\n\n@app.post('/ask')\ndef ask(question: str):\n    return llm.invoke(question).content\n"
)

NoLlmFallback.VALID = (
    Example(
        files={
            "server.py": _LANGCHAIN_SERVER.replace(
                "llm = ChatOpenAI(model='gpt-4o')\n",
                "from langchain_anthropic import ChatAnthropic\n\n"
                "llm = ChatOpenAI(model='gpt-4o').with_fallbacks([ChatAnthropic(model='claude-sonnet-4-5')])\n",
            )
        }
    ),
    Example(
        files={
            "app.py": _CHAT_APP,
            "router.py": "from litellm import Router\n\nrouter = Router(model_list=MODELS, fallbacks=[{'gpt-4o': ['claude']}])\n",
        }
    ),
    Example(
        files={
            "app.py": "import streamlit as st\nimport openai\nfrom openai import OpenAI\n\nclient = OpenAI()\n\n\n"
            "def answer(messages):\n    try:\n"
            "        return client.chat.completions.create(model='gpt-4o', messages=messages)\n"
            "    except openai.APIError:\n"
            "        return client.chat.completions.create(model='gpt-4o-mini', messages=messages)\n",
        }
    ),
    Example(
        files={
            "api.py": "from flask import Flask\nimport litellm\n\napp = Flask(__name__)\nMODELS = ['gpt-4o', 'claude-sonnet-4-5']\n\n\n"
            "def complete(messages):\n    for name in MODELS:\n        try:\n"
            "            return litellm.completion(model=name, messages=messages)\n"
            "        except litellm.exceptions.APIError:\n            continue\n",
        }
    ),
    Example(
        files={
            "app.py": _CHAT_APP,
            "litellm_config.yaml": "model_list:\n  - model_name: gpt-4o\n"
            "router_settings:\n  fallbacks: [{\"gpt-4o\": [\"claude-sonnet\"]}]\n",
        }
    ),
    # A script that is not served can be rerun.
    Example(files={"summarize.py": "from openai import OpenAI\n\nOpenAI().chat.completions.create(model='gpt-4o', messages=[])\n"}),
)
NoLlmFallback.INVALID = (
    Example(files={"server.py": _LANGCHAIN_SERVER}),
    Example(files={"app.py": _CHAT_APP}),
    Example(
        files={
            # Retrying the same model is no fallback.
            "app.py": "import gradio as gr\nimport openai\nfrom openai import OpenAI\n\nclient = OpenAI()\n\n\n"
            "def answer(message, history):\n    try:\n"
            "        return client.chat.completions.create(model='gpt-4o', messages=[])\n"
            "    except openai.RateLimitError:\n"
            "        return client.chat.completions.create(model='gpt-4o', messages=[])\n",
        }
    ),
)

RULES = (DangerousAgentTools, NoLlmGuardrails, NoLlmCostTracking, NoLlmFallback)
