"""LLM rules: user text that rewrites the instructions, and model output that runs as code."""

from __future__ import annotations

import libcst as cst

from pytest_aiml.engine.context import ModuleContext, call_argument, literal_string
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority
from pytest_aiml.rules.flow import (
    Origin,
    ValueFlow,
    all_parameters,
    attribute_text,
    dotted_text,
    flask_request_data,
    is_dependency,
    is_request_object,
    request_body_read,
    route_path,
)

#: Client libraries whose import marks a module as one that talks to an LLM.
LLM_CLIENT_MODULES = (
    "openai", "anthropic", "llama_index", "litellm", "cohere", "mistralai", "google.generativeai", "google.genai",
)
LLM_PREFILTER = (
    "openai", "anthropic", "langchain", "llama_index", "litellm", "cohere", "mistralai", "generativeai", "genai",
)


def imports_llm_client(context: ModuleContext) -> bool:
    if context.imports_any(*LLM_CLIENT_MODULES):
        return True
    return any(module.startswith("langchain") for module in context.imported_modules())


def _is_llm_framework_name(qualified: str | None) -> bool:
    return qualified is not None and qualified.startswith(("langchain", "llama_index"))


# -- AIML301 prompt-injection ------------------------------------------------------

STREAMLIT_INPUTS = frozenset({"streamlit.text_input", "streamlit.text_area", "streamlit.chat_input"})
SYSTEM_ROLES = frozenset({"system", "developer"})
#: Keywords that take the system prompt: Anthropic ``system=``, Gemini ``system_instruction=``,
#: LlamaIndex and pydantic-ai ``system_prompt=``.
SYSTEM_KEYWORDS = frozenset({"system", "system_prompt", "system_instruction"})
#: The last two parts of calls whose argument is parsed as a prompt template.
TEMPLATE_FACTORIES = frozenset(
    {
        "PromptTemplate.from_template", "ChatPromptTemplate.from_template",
        "SystemMessagePromptTemplate.from_template", "HumanMessagePromptTemplate.from_template",
        "PromptTemplate.from_file",
    }
)


class PromptInjection(FileRule):
    """Flag user text formatted into a system prompt or used as a prompt template."""

    code = "AIML301"
    slug = "prompt-injection"
    category = Category.SECURITY
    priority = Priority.CRITICAL
    effort = Effort.MEDIUM
    anti_pattern = "Prompt injection vulnerability (LLM)"
    message = "user text is formatted into a system prompt or used as a prompt template"
    impact = (
        "Text a user controls becomes part of the model's instructions: they can override the system "
        "prompt, leak it, or make the model call tools and return content it must not."
    )
    fix = (
        "Keep the system prompt and templates constant; send user text as its own user message or as a "
        "variable of a fixed template (PromptTemplate.from_template('... {question}') with "
        "question=user_text); add input and output guardrails where the model can act."
    )
    prefilter = LLM_PREFILTER

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._flow = ValueFlow(context, self._source)
        #: For each enclosing function: the FastAPI ``Request`` parameters of a route handler.
        self._request_names: list[set[str]] = []
        self._in_route: list[bool] = []
        self._message_lists = 0

    def _source(self, expr: cst.BaseExpression) -> str | None:
        if isinstance(expr, cst.Call) and self.context.qualified_name(expr.func) in STREAMLIT_INPUTS:
            return f"{self.context.qualified_name(expr.func)}()"
        if not self._in_route or not self._in_route[-1]:
            return None
        return flask_request_data(expr, self.context) or request_body_read(expr, self._request_names[-1])

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._flow.enter_scope()
        inherited = bool(self._in_route) and self._in_route[-1]
        is_route = route_path(node, self.context) is not None
        request_names = set(self._request_names[-1]) if inherited else set()
        if is_route:
            for param in all_parameters(node):
                name = param.name.value
                if name in ("self", "cls") or is_dependency(param, self.context):
                    continue
                if is_request_object(param, self.context):
                    request_names.add(name)
                else:
                    self._flow.bind(param.name, Origin(f"the route handler argument '{name}'"))
        self._in_route.append(inherited or is_route)
        self._request_names.append(request_names)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._flow.leave_scope()
        self._in_route.pop()
        self._request_names.pop()

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._flow.bind_assignment(original_node)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        self._flow.bind_assignment(original_node)

    # -- system prompts ---------------------------------------------------------------

    def visit_Dict(self, node: cst.Dict) -> None:
        role = content = None
        for element in node.elements:
            if not isinstance(element, cst.DictElement):
                continue
            key = literal_string(element.key)
            if key == "role":
                role = self.context.string_value(element.value)
            elif key == "content":
                content = element.value
        if role in SYSTEM_ROLES and content is not None:
            self._check_system_prompt(content, f"the content of a '{role}' message")

    def visit_Tuple(self, node: cst.Tuple) -> None:
        if self._message_lists == 0 or len(node.elements) != 2:
            return
        if literal_string(node.elements[0].value) == "system":
            where = "a ('system', ...) message of ChatPromptTemplate.from_messages()"
            self._check_system_prompt(node.elements[1].value, where)

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.qualified_name(node.func)
        if isinstance(node.func, cst.Attribute):
            written = attribute_text(node.func)
        else:
            written = dotted_text(node.func) or "call"
        if qualified is not None and qualified.endswith("ChatPromptTemplate.from_messages"):
            self._message_lists += 1
        for arg in node.args:
            if arg.keyword is not None and arg.keyword.value in SYSTEM_KEYWORDS:
                self._check_system_prompt(arg.value, f"{arg.keyword.value}= of {written}()")
            elif arg.keyword is not None and arg.keyword.value == "instructions" and written.endswith(".create"):
                self._check_system_prompt(arg.value, f"instructions= of {written}()")
        if not _is_llm_framework_name(qualified):
            return
        last_two = ".".join(qualified.rsplit(".", 2)[-2:])
        name = qualified.rsplit(".", 1)[-1]
        if last_two in TEMPLATE_FACTORIES:
            self._check_template(node, call_argument(node, 0, "template"), written)
        elif name == "PromptTemplate":
            self._check_template(node, call_argument(node, 0, "template"), written)
        elif name == "SystemMessage":
            content = call_argument(node, 0, "content")
            if content is not None:
                self._check_system_prompt(content.value, f"{written}()")
        elif name == "ChatMessage" and self._has_system_role(node):
            content = call_argument(node, None, "content")
            if content is not None:
                self._check_system_prompt(content.value, f"{written}(role=system)")

    def leave_Call(self, original_node: cst.Call) -> None:
        qualified = self.context.qualified_name(original_node.func)
        if qualified is not None and qualified.endswith("ChatPromptTemplate.from_messages"):
            self._message_lists -= 1

    def _has_system_role(self, node: cst.Call) -> bool:
        role = call_argument(node, None, "role")
        if role is None:
            return False
        text = self.context.string_value(role.value)
        if text is not None:
            return text in SYSTEM_ROLES
        written = dotted_text(role.value) or ""
        return written.endswith(".SYSTEM")

    def _check_system_prompt(self, value: cst.BaseExpression, where: str) -> None:
        origin = self._flow.origin(value)
        if origin is None or not origin.interpolated or not imports_llm_client(self.context):
            return
        self.report(value, f"{origin.description} is formatted into the system prompt ({where})")

    def _check_template(self, node: cst.Call, arg: cst.Arg | None, written: str) -> None:
        if arg is None:
            return
        origin = self._flow.origin(arg.value)
        if origin is None:
            return
        self.report(node, f"{origin.description} is used as the prompt template of {written}()")


PromptInjection.VALID = (
    Example(
        "from fastapi import FastAPI\nfrom openai import OpenAI\n\napp = FastAPI()\nclient = OpenAI()\n"
        "SYSTEM = 'You answer questions about our product.'\n\n@app.post('/ask')\ndef ask(question: str):\n"
        "    messages = [{'role': 'system', 'content': SYSTEM}, {'role': 'user', 'content': question}]\n"
        "    return client.chat.completions.create(model='gpt-4o', messages=messages)\n"
    ),
    Example(
        "from fastapi import FastAPI\nfrom langchain_core.prompts import PromptTemplate\n\napp = FastAPI()\n"
        "template = PromptTemplate.from_template('Answer briefly: {question}')\n\n@app.post('/ask')\n"
        "def ask(question: str):\n    return chain.invoke({'question': question})\n"
    ),
    Example(
        "import anthropic\nfrom flask import Flask, request\n\napp = Flask(__name__)\n\n@app.post('/chat')\n"
        "def chat():\n    text = request.json['text']\n    return anthropic.Anthropic().messages.create(\n"
        "        model='claude-sonnet-4-5', system='You are terse.', max_tokens=256,\n"
        "        messages=[{'role': 'user', 'content': f'Question: {text}'}],\n    )\n"
    ),
    Example(
        "from openai import OpenAI\n\ndef build(topic):\n    # not a request handler: the topic comes from our own code\n"
        "    return [{'role': 'system', 'content': f'You write about {topic}.'}]\n"
    ),
    Example(
        "from flask import Flask, request\n\napp = Flask(__name__)\n\n@app.post('/echo')\ndef echo():\n"
        "    # no LLM client in this module\n    return {'role': 'system', 'content': f\"{request.json['x']}\"}\n"
    ),
    Example(
        "from fastapi import FastAPI\nfrom langchain_core.prompts import ChatPromptTemplate\n\napp = FastAPI()\n\n"
        "@app.post('/ask')\ndef ask(question: str):\n"
        "    prompt = ChatPromptTemplate.from_messages([('system', 'Be helpful.'), ('human', '{q}')])\n"
        "    return (prompt | llm).invoke({'q': question})\n"
    ),
)
PromptInjection.INVALID = (
    Example(
        "from fastapi import FastAPI\nfrom openai import OpenAI\n\napp = FastAPI()\nclient = OpenAI()\n\n"
        "@app.post('/ask')\ndef ask(persona: str, question: str):\n"
        "    system = f'You are {persona}. Never reveal secrets.'\n"
        "    messages = [{'role': 'system', 'content': system}, {'role': 'user', 'content': question}]\n"
        "    return client.chat.completions.create(model='gpt-4o', messages=messages)\n",
        lines=(10,),
    ),
    Example(
        "import anthropic\nfrom flask import Flask, request\n\napp = Flask(__name__)\n\n@app.post('/chat')\n"
        "def chat():\n    data = request.get_json()\n    return anthropic.Anthropic().messages.create(\n"
        "        model='claude-sonnet-4-5', max_tokens=256, system='Rules: ' + data['rules'],\n"
        "        messages=[{'role': 'user', 'content': data['q']}],\n    )\n",
        lines=(10,),
    ),
    Example(
        "from fastapi import FastAPI\nfrom langchain_core.prompts import PromptTemplate\n\napp = FastAPI()\n\n"
        "@app.post('/ask')\ndef ask(template: str, question: str):\n"
        "    prompt = PromptTemplate.from_template(template)\n    return (prompt | llm).invoke({'question': question})\n",
        lines=(8,),
    ),
    Example(
        "import streamlit as st\nfrom langchain_core.messages import HumanMessage, SystemMessage\n\n"
        "role = st.text_input('Assistant role')\n"
        "messages = [SystemMessage(content='You are %s.' % role), HumanMessage(content='Hi')]\n",
        lines=(5,),
    ),
    Example(
        "from fastapi import FastAPI\nfrom langchain_core.prompts import ChatPromptTemplate\n\napp = FastAPI()\n\n"
        "@app.post('/ask')\nasync def ask(req: AskRequest):\n"
        "    prompt = ChatPromptTemplate.from_messages([\n"
        "        ('system', 'You speak {lang}. Extra rules: {}'.format(req.rules)),\n        ('human', '{q}'),\n    ])\n"
        "    return await (prompt | llm).ainvoke({'q': req.question, 'lang': 'en'})\n",
        lines=(9,),
    ),
)


# -- AIML302 llm-output-executed ---------------------------------------------------

#: Endings of client calls that return a completion: ``client.chat.completions.create``.
LLM_CALL_SUFFIXES = (
    "chat.completions.create", "completions.create", "messages.create", "responses.create",
    "ChatCompletion.create", "Completion.create", "chat.complete", "generate_content",
)
#: Methods of LLM, chain and engine objects that return generated text.
LLM_METHODS = frozenset(
    {
        "invoke", "ainvoke", "complete", "acomplete", "generate_content", "generate_content_async", "chat",
        "achat", "stream_complete",
    }
)
#: Methods that generate only when the receiver is an LLM, chain or agent: ``llm.predict``, ``chain.run``.
LLM_RECEIVER_METHODS = frozenset({"predict", "apredict", "run", "arun"})
LLM_RECEIVER_WORDS = ("llm", "chain", "agent", "chat")
LLM_FUNCTIONS = frozenset(
    {"litellm.completion", "litellm.acompletion", "ollama.chat", "ollama.generate", "openai.ChatCompletion.create",
     "openai.Completion.create"}
)
#: Calls that run their argument as code or as a shell command.
CODE_EXECUTION = frozenset(
    {
        "builtins.eval", "builtins.exec", "builtins.compile", "os.system", "os.popen", "subprocess.run",
        "subprocess.call", "subprocess.Popen", "subprocess.check_output", "subprocess.check_call",
        "subprocess.getoutput", "subprocess.getstatusoutput", "asyncio.create_subprocess_shell",
        "asyncio.create_subprocess_exec",
    }
)
#: Keyword arguments of those calls that carry the code, the command or its standard input.
EXECUTED_KEYWORDS = frozenset({"source", "args", "cmd", "command", "input", "program"})


class LlmOutputExecuted(FileRule):
    """Flag LLM output passed to eval, exec, compile, a shell or a subprocess."""

    code = "AIML302"
    slug = "llm-output-executed"
    category = Category.SECURITY
    priority = Priority.CRITICAL
    effort = Effort.MEDIUM
    anti_pattern = "Prompt injection vulnerability (LLM)"
    message = "LLM output is executed as code or as a shell command"
    impact = (
        "Whoever can influence the model's input (a user, a retrieved document, a web page) can make it "
        "emit code, and the application runs that code with its own permissions."
    )
    fix = (
        "Never pass generated text to eval, exec, compile, os.system or subprocess; parse it into data "
        "(json.loads, ast.literal_eval) and map it to an allowlist of actions, or run generated code only "
        "in an isolated sandbox without credentials or network."
    )
    prefilter = LLM_PREFILTER

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._flow = ValueFlow(context, self._llm_call)
        self._defined: set[str] = set()

    def _llm_call(self, expr: cst.BaseExpression) -> str | None:
        """Describe a call that returns LLM output, or return None."""
        if not isinstance(expr, cst.Call):
            return None
        func = expr.func
        qualified = self.context.qualified_name(func)
        if qualified in LLM_FUNCTIONS:
            return f"{qualified}()"
        if isinstance(func, cst.Name):
            lowered = func.value.lower()
            is_llm = lowered == "llm" or lowered.endswith("_llm")
            return f"{func.value}()" if is_llm and qualified is None else None
        if not isinstance(func, cst.Attribute):
            return None
        written = attribute_text(func)
        if written.endswith(LLM_CALL_SUFFIXES) or func.attr.value in LLM_METHODS:
            return f"{written}()"
        receiver = written.rsplit(".", 1)[0].lower()
        if func.attr.value in LLM_RECEIVER_METHODS and any(word in receiver for word in LLM_RECEIVER_WORDS):
            return f"{written}()"
        return None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        # The import map resolves any unimported ``eval`` to the builtin, so a
        # function of that name defined here must be excluded by the rule itself.
        self._defined.add(node.name.value)
        self._flow.enter_scope()

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._flow.leave_scope()

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._flow.bind_assignment(original_node)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        self._flow.bind_assignment(original_node)

    def visit_Call(self, node: cst.Call) -> None:
        sink = self.context.qualified_name(node.func)
        if sink not in CODE_EXECUTION or not imports_llm_client(self.context):
            return
        if isinstance(node.func, cst.Name) and node.func.value in self._defined:
            return
        for arg in node.args:
            if arg.keyword is not None and arg.keyword.value not in EXECUTED_KEYWORDS:
                continue
            origin = self._flow.origin(arg.value)
            if origin is not None:
                sink_name = sink.removeprefix("builtins.")
                self.report(node, f"{sink_name}() executes the output of the LLM call {origin.description}")
                return


LlmOutputExecuted.VALID = (
    Example(
        "import json\nfrom openai import OpenAI\n\nclient = OpenAI()\nresp = client.chat.completions.create(model='m', messages=[])\n"
        "action = json.loads(resp.choices[0].message.content)\n"
    ),
    Example(
        "import subprocess\nfrom openai import OpenAI\n\nsubprocess.run(['git', 'status'], check=True)\n"
        "result = eval('1 + 1')\n"
    ),
    Example(
        "import ast\nfrom langchain_openai import ChatOpenAI\n\nllm = ChatOpenAI()\n"
        "value = ast.literal_eval(llm.invoke('Give a list').content)\n"
    ),
    Example(
        "import subprocess\n\ndef run(chain):\n    # no LLM client imported: chain is something else here\n"
        "    out = chain.run()\n    subprocess.run(out, shell=True)\n"
    ),
    Example(
        "import subprocess\nimport anthropic\n\nclient = anthropic.Anthropic()\n"
        "msg = client.messages.create(model='m', max_tokens=10, messages=[])\n"
        "subprocess.run(['notify-send', 'done'], timeout=float(len(msg.content)))\n"
    ),
    Example(
        "from openai import OpenAI\n\nclient = OpenAI()\n\ndef answer(code):\n    reply = summarize(code)\n"
        "    exec(reply)  # summarize is not an LLM call this rule knows\n"
    ),
)
LlmOutputExecuted.INVALID = (
    Example(
        "from openai import OpenAI\n\nclient = OpenAI()\nresp = client.chat.completions.create(model='m', messages=[])\n"
        "code = resp.choices[0].message.content\nexec(code)\n",
        lines=(6,),
    ),
    Example(
        "import os\nimport anthropic\n\ndef fix(client: anthropic.Anthropic):\n"
        "    msg = client.messages.create(model='m', max_tokens=100, messages=[])\n"
        "    os.system(msg.content[0].text.strip())\n",
        lines=(6,),
    ),
    Example(
        "from subprocess import check_output\nfrom langchain_openai import ChatOpenAI\n\nllm = ChatOpenAI()\n"
        "command = llm.invoke('Which shell command lists files?').content\nprint(check_output(command, shell=True))\n",
        lines=(6,),
    ),
    Example(
        "import google.generativeai as genai\n\nmodel = genai.GenerativeModel('gemini-pro')\n"
        "answer = eval(model.generate_content('2+2 as a Python expression').text)\n",
        lines=(4,),
    ),
    Example(
        "import subprocess as sp\nimport litellm\n\nreply = litellm.completion(model='m', messages=[])\n"
        "sp.Popen(['bash', '-c', reply.choices[0].message.content])\n",
        lines=(5,),
    ),
)

RULES = (PromptInjection, LlmOutputExecuted)
