"""LLM rules: user text that rewrites the instructions, and model output that runs as code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pytest_aiml.engine.context import (
    ModuleContext,
    PendingFinding,
    call_argument,
    is_true,
    keyword_value,
    literal_string,
)
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority
from pytest_aiml.engine.walk import Visitor, walk
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
    "groq", "ollama", "together", "agents", "pydantic_ai", "langgraph",
)
LLM_PREFILTER = (
    "openai", "anthropic", "langchain", "llama_index", "litellm", "cohere", "mistralai", "generativeai", "genai",
    "groq", "ollama", "pydantic_ai", "langgraph", "from agents",
)


def imports_llm_client(context: ModuleContext) -> bool:
    if context.imports_any(*LLM_CLIENT_MODULES):
        return True
    return any(module.startswith("langchain") for module in context.imported_modules())


def _is_llm_framework_name(qualified: str | None) -> bool:
    return qualified is not None and qualified.startswith(("langchain", "llama_index"))


# -- value flow shared by both rules -------------------------------------------------

#: Functions that return their first argument's text reshaped, so the text keeps its origin.
TEXT_RESHAPERS = frozenset({"textwrap.dedent", "textwrap.indent", "textwrap.fill", "inspect.cleandoc"})
#: ``string.Template`` methods that substitute their arguments into the template.
TEMPLATE_SUBSTITUTIONS = frozenset({"substitute", "safe_substitute"})


class PromptFlow(ValueFlow):
    """A :class:`ValueFlow` that also follows the ways prompts are built.

    On top of the base flow it follows ``string.Template.substitute``, ``textwrap``
    reshaping, and, through ``helper``, calls of functions of the module that return
    text built from their arguments.
    """

    def __init__(
        self,
        context: ModuleContext,
        source: Callable[[cst.BaseExpression], str | None],
        carries: Callable[[cst.Call], bool] | None = None,
        helper: Callable[[cst.Call], Origin | None] | None = None,
    ) -> None:
        super().__init__(context, source, carries)
        self.helper = helper

    def origin(self, expr: cst.BaseExpression) -> Origin | None:
        if isinstance(expr, cst.BooleanOperation):
            return self.origin(expr.left) or self.origin(expr.right)
        if isinstance(expr, cst.IfExp):
            return self.origin(expr.body) or self.origin(expr.orelse)
        return super().origin(expr)

    def _call_origin(self, call: cst.Call) -> Origin | None:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in TEMPLATE_SUBSTITUTIONS:
            found = self._first(arg.value for arg in call.args)
            if found is not None:
                return found.formatted()
        if call.args and self.context.qualified_name(func) in TEXT_RESHAPERS:
            return self.origin(call.args[0].value)
        if self.helper is not None:
            found = self.helper(call)
            if found is not None:
                return found
        return super()._call_origin(call)

    def bind_augmented(self, node: cst.AugAssign) -> None:
        """Follow ``prompt += text``: the name now refers to a string built from both sides."""
        if not isinstance(node.target, cst.Name) or not isinstance(node.operator, (cst.AddAssign, cst.ModuloAssign)):
            return
        found = self.origin(node.value) or self.lookup(node.target.value)
        if found is not None:
            self.bind(node.target, found.formatted())

    def bind_loop(self, node: cst.For) -> None:
        """Bind a loop target to the origin of what it iterates: ``for chunk in stream``."""
        self.bind(node.target, self.origin(node.iter))


def bound_arguments(
    function: cst.FunctionDef, call: cst.Call, *, skip_first: bool
) -> Iterator[tuple[str, cst.BaseExpression]]:
    """Pair the arguments of ``call`` with the parameters of ``function`` they bind to."""
    params = function.params
    positional = [param.name.value for param in (*params.posonly_params, *params.params)]
    if skip_first:
        positional = positional[1:]
    keywords = {param.name.value for param in (*params.params, *params.kwonly_params)}
    index = 0
    for arg in call.args:
        if arg.star:
            return
        if arg.keyword is None:
            if index < len(positional):
                yield positional[index], arg.value
            index += 1
        elif arg.keyword.value in keywords:
            yield arg.keyword.value, arg.value


class _ReturnedParameters(Visitor):
    """Find which parameters of one function reach its return value, and whether formatted."""

    def __init__(self, flow: PromptFlow) -> None:
        super().__init__()
        self.flow = flow
        #: Parameter name -> True when the return value formats it into a larger string.
        self.returned: dict[str, bool] = {}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self.flow.bind_assignment(original_node)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        self.flow.bind_assignment(original_node)

    def leave_AugAssign(self, original_node: cst.AugAssign) -> None:
        self.flow.bind_augmented(original_node)

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is None:
            return
        found = self.flow.origin(node.value)
        if found is not None:
            self.returned[found.description] = self.returned.get(found.description, False) or found.interpolated


def returned_parameters(context: ModuleContext, function: cst.FunctionDef) -> dict[str, bool]:
    """Return the parameters of ``function`` that flow into its return value."""
    flow = PromptFlow(context, lambda expr: None)
    for param in all_parameters(function):
        flow.bind(param.name, Origin(param.name.value))
    collector = _ReturnedParameters(flow)
    walk(function.body, collector)
    return collector.returned


# -- AIML301 prompt-injection ------------------------------------------------------

STREAMLIT_INPUT_METHODS = frozenset({"text_input", "text_area", "chat_input"})
SYSTEM_ROLES = frozenset({"system", "developer"})
#: Keywords that take the system prompt: Anthropic ``system=``, Gemini ``system_instruction=``,
#: LlamaIndex and pydantic-ai ``system_prompt=``.
SYSTEM_KEYWORDS = frozenset({"system", "system_prompt", "system_instruction"})
#: Keywords of LangGraph's ``create_react_agent`` that become its system message.
AGENT_PROMPT_KEYWORDS = frozenset({"prompt", "state_modifier", "messages_modifier"})
#: The last two parts of calls whose argument is parsed as a prompt template.
TEMPLATE_FACTORIES = frozenset(
    {
        "PromptTemplate.from_template", "ChatPromptTemplate.from_template",
        "SystemMessagePromptTemplate.from_template", "HumanMessagePromptTemplate.from_template",
        "PromptTemplate.from_file",
    }
)
#: Attributes of a Django or Django REST framework request that hold what the client sent.
DJANGO_REQUEST_DATA = frozenset({"POST", "GET", "body", "data", "query_params"})
WEBSOCKET_TYPES = frozenset({"fastapi.WebSocket", "fastapi.websockets.WebSocket", "starlette.websockets.WebSocket"})
WEBSOCKET_READERS = frozenset({"receive_text", "receive_json", "receive_bytes"})
#: Gradio calls whose ``fn`` receives what users type: ``gr.Interface(fn, ...)``, ``button.click(fn, ...)``.
GRADIO_APPS = frozenset({"gradio.Interface", "gradio.ChatInterface", "gradio.on"})
GRADIO_EVENTS = frozenset({"click", "submit", "change", "input", "select", "blur", "upload", "then", "success"})
#: Parameter types that cannot carry an instruction.
NON_TEXT_TYPES = frozenset({"builtins.int", "builtins.float", "builtins.bool"})


@dataclass(frozen=True, slots=True)
class HelperSink:
    """A parameter of a helper function that the helper puts into a system prompt or uses as a template."""

    parameter: str
    where: str
    interpolated: bool
    template: bool


@dataclass(frozen=True, slots=True)
class HelperCall:
    """A call that passes user text to a function of the module, checked once the whole module is read."""

    helper: str
    display: str
    parameter: str
    origin: Origin
    node: cst.Call
    statement: cst.CSTNode | None


class _GradioHandlers(Visitor):
    """Collect the names of functions that Gradio calls with what users enter."""

    def __init__(self, context: ModuleContext) -> None:
        super().__init__()
        self.context = context
        self.names: set[str] = set()

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        is_event = isinstance(func, cst.Attribute) and func.attr.value in GRADIO_EVENTS
        if not is_event and self.context.qualified_name(func) not in GRADIO_APPS:
            return
        position = 1 if self.context.qualified_name(func) == "gradio.on" else 0
        handler = call_argument(node, position, "fn")
        if handler is not None and isinstance(handler.value, cst.Name):
            self.names.add(handler.value.value)


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
        self._flow = PromptFlow(context, self._source, helper=self._helper_result)
        #: Parameters of the function being visited, so that a helper's own prompt sinks are known by parameter.
        self._parameters = PromptFlow(context, lambda expr: None)
        #: For each enclosing function: the FastAPI ``Request`` parameters of a route handler.
        self._request_names: list[set[str]] = []
        #: For each enclosing function: the parameters holding a Django request or a FastAPI WebSocket.
        self._django_names: list[set[str]] = []
        self._websocket_names: list[set[str]] = []
        self._in_route: list[bool] = []
        self._message_lists = 0
        #: Each enclosing definition: ``("class", name)``, or ``("function", helper key)`` with None for untracked functions.
        self._enclosing: list[tuple[str, str | None]] = []
        self._methods: list[dict[str, cst.FunctionDef]] = []
        self._returns: dict[int, dict[str, bool]] = {}
        self._helper_sinks: dict[str, list[HelperSink]] = {}
        self._helper_calls: list[HelperCall] = []
        self._streamlit = context.imports_any("streamlit")
        self._django = context.imports_any("django", "rest_framework")
        self._gradio_handlers: set[str] = set()
        if context.imports_any("gradio"):
            collector = _GradioHandlers(context)
            walk(context.module, collector)
            self._gradio_handlers = collector.names

    # -- sources of user text ---------------------------------------------------------

    def _source(self, expr: cst.BaseExpression) -> str | None:
        if isinstance(expr, cst.Call):
            return self._input_call(expr)
        if isinstance(expr, cst.Attribute):
            if self.context.qualified_name(expr) == "sys.argv":
                return "sys.argv"
            flask = flask_request_data(expr, self.context)
            if flask is not None:
                return flask
            base = expr.value
            if (
                self._django_names and isinstance(base, cst.Name) and base.value in self._django_names[-1]
                and expr.attr.value in DJANGO_REQUEST_DATA
            ):
                return f"{base.value}.{expr.attr.value}"
            return None
        if isinstance(expr, cst.Await):
            call = expr.expression
            if (
                self._websocket_names and isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
                and isinstance(call.func.value, cst.Name) and call.func.value.value in self._websocket_names[-1]
                and call.func.attr.value in WEBSOCKET_READERS
            ):
                return f"await {call.func.value.value}.{call.func.attr.value}()"
            if self._in_route and self._in_route[-1]:
                return request_body_read(expr, self._request_names[-1])
        return None

    def _input_call(self, call: cst.Call) -> str | None:
        func = call.func
        qualified = self.context.qualified_name(func)
        if qualified == "builtins.input" and "input" not in self.context.functions:
            return "input()"
        if self._streamlit and isinstance(func, cst.Attribute) and func.attr.value in STREAMLIT_INPUT_METHODS:
            # A widget of a column or container (``col.text_input``) has no resolvable name.
            if qualified is None or qualified.startswith("streamlit."):
                return f"{attribute_text(func)}()"
        flask = flask_request_data(call, self.context)
        if flask is not None:
            return flask
        if self._in_route and self._in_route[-1]:
            return request_body_read(call, self._request_names[-1])
        return None

    # -- scopes -----------------------------------------------------------------------

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        methods = {
            statement.name.value: statement for statement in node.body.body if isinstance(statement, cst.FunctionDef)
        }
        self._methods.append(methods)
        self._enclosing.append(("class", node.name.value))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._methods.pop()
        self._enclosing.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._flow.enter_scope()
        self._parameters.enter_scope()
        self._enclosing.append(("function", self._helper_key(node)))
        inherited = bool(self._in_route) and self._in_route[-1]
        is_route = route_path(node, self.context) is not None
        user_function = self._user_function(node)
        request_names = set(self._request_names[-1]) if inherited else set()
        django_names = set(self._django_names[-1]) if self._django_names else set()
        websocket_names = set(self._websocket_names[-1]) if self._websocket_names else set()
        params = [param for param in all_parameters(node) if param.name.value not in ("self", "cls")]
        if self._django and params and params[0].name.value == "request":
            django_names.add("request")
        for param in params:
            name = param.name.value
            self._parameters.bind(param.name, Origin(name))
            annotation = param.annotation
            if annotation is not None and self.context.qualified_name(annotation.annotation) in WEBSOCKET_TYPES:
                websocket_names.add(name)
                continue
            if is_route and is_request_object(param, self.context):
                request_names.add(name)
                continue
            if is_route and is_dependency(param, self.context):
                continue
            if annotation is not None and self.context.qualified_name(annotation.annotation) in NON_TEXT_TYPES:
                continue
            if is_route:
                self._flow.bind(param.name, Origin(f"the route handler argument '{name}'"))
            elif user_function is not None:
                self._flow.bind(param.name, Origin(f"{user_function} '{name}'"))
        self._in_route.append(inherited or is_route)
        self._request_names.append(request_names)
        self._django_names.append(django_names)
        self._websocket_names.append(websocket_names)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._flow.leave_scope()
        self._parameters.leave_scope()
        self._enclosing.pop()
        self._in_route.pop()
        self._request_names.pop()
        self._django_names.pop()
        self._websocket_names.pop()

    def _user_function(self, node: cst.FunctionDef) -> str | None:
        """Describe a function whose parameters a UI framework fills with user input, or return None."""
        if node.name.value in self._gradio_handlers and not self._enclosing[:-1]:
            return "the Gradio input"
        for decorator in node.decorators:
            target = decorator.decorator.func if isinstance(decorator.decorator, cst.Call) else decorator.decorator
            if self.context.qualified_name(target) == "chainlit.on_message":
                return "the Chainlit message"
        return None

    def _helper_key(self, node: cst.FunctionDef) -> str | None:
        # Only module-level functions and methods of module-level classes are followed
        # as helpers: those are the ones a call names without ambiguity.
        if not self._enclosing:
            return node.name.value
        if len(self._enclosing) == 1 and self._enclosing[0][0] == "class":
            return f"{self._enclosing[0][1]}.{node.name.value}"
        return None

    # -- assignments ------------------------------------------------------------------

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._flow.bind_assignment(original_node)
        self._parameters.bind_assignment(original_node)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        self._flow.bind_assignment(original_node)
        self._parameters.bind_assignment(original_node)

    def leave_AugAssign(self, original_node: cst.AugAssign) -> None:
        self._flow.bind_augmented(original_node)
        self._parameters.bind_augmented(original_node)

    def leave_NamedExpr(self, original_node: cst.NamedExpr) -> None:
        self._flow.bind(original_node.target, self._flow.origin(original_node.value))
        self._parameters.bind(original_node.target, self._parameters.origin(original_node.value))

    def visit_For(self, node: cst.For) -> None:
        self._flow.bind_loop(node)
        self._parameters.bind_loop(node)

    # -- helpers of the module --------------------------------------------------------

    def _resolve_helper(self, call: cst.Call) -> tuple[str, str, cst.FunctionDef, bool] | None:
        """Return the key, the written name, the definition and whether it is a method, for a call of a helper."""
        func = call.func
        if isinstance(func, cst.Name):
            function = self.context.functions.get(func.value)
            if function is None or func.value in self.context.imports:
                return None
            return func.value, func.value, function, False
        if (
            isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
            and func.value.value in ("self", "cls") and self._methods
        ):
            class_name = next(name for kind, name in reversed(self._enclosing) if kind == "class")
            method = self._methods[-1].get(func.attr.value)
            if method is None or class_name is None:
                return None
            return f"{class_name}.{func.attr.value}", f"{func.value.value}.{func.attr.value}", method, True
        return None

    def _helper_result(self, call: cst.Call) -> Origin | None:
        """Return the origin of a helper's result when user text passed to it reaches its return value."""
        resolved = self._resolve_helper(call)
        if resolved is None:
            return None
        _, display, function, is_method = resolved
        returned = self._returns.get(id(function))
        if returned is None:
            returned = self._returns[id(function)] = returned_parameters(self.context, function)
        if not returned:
            return None
        for parameter, value in bound_arguments(function, call, skip_first=is_method):
            if parameter not in returned:
                continue
            found = self._flow.origin(value)
            if found is not None:
                return Origin(f"{found.description} through {display}()", found.interpolated or returned[parameter])
        return None

    def _record_helper_call(self, call: cst.Call) -> None:
        resolved = self._resolve_helper(call)
        if resolved is None:
            return
        key, display, function, is_method = resolved
        for parameter, value in bound_arguments(function, call, skip_first=is_method):
            found = self._flow.origin(value)
            if found is not None:
                statement = self.context.statements[-1] if self.context.statements else None
                self._helper_calls.append(HelperCall(key, display, parameter, found, call, statement))

    def _record_helper_sink(self, value: cst.BaseExpression, where: str, *, template: bool) -> None:
        key = self._enclosing[-1][1] if self._enclosing and self._enclosing[-1][0] == "function" else None
        if key is None:
            return
        found = self._parameters.origin(value)
        if found is not None:
            sink = HelperSink(found.description, where, found.interpolated, template)
            self._helper_sinks.setdefault(key, []).append(sink)

    def leave_Module(self, original_node: cst.Module) -> None:
        # Helpers may be defined after their callers, so calls are matched once the
        # whole module has been read.
        has_client = imports_llm_client(self.context)
        for call in self._helper_calls:
            for sink in self._helper_sinks.get(call.helper, ()):
                if sink.parameter != call.parameter:
                    continue
                if sink.template:
                    message = f"{call.origin.description} is passed to {call.display}(), which uses it as the prompt template of {sink.where}()"
                elif has_client and (sink.interpolated or call.origin.interpolated):
                    message = f"{call.origin.description} is passed to {call.display}(), which formats it into the system prompt ({sink.where})"
                else:
                    continue
                self.context.pending.append(PendingFinding(self.code, call.node, message, call.statement))
                break

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
        self._record_helper_call(node)
        for arg in node.args:
            keyword = arg.keyword.value if arg.keyword is not None else None
            if keyword in SYSTEM_KEYWORDS:
                self._check_system_prompt(arg.value, f"{keyword}= of {written}()")
            elif keyword == "instructions" and (written.endswith(".create") or _is_agents_sdk_agent(qualified)):
                self._check_system_prompt(arg.value, f"instructions= of {written}()")
            elif keyword in AGENT_PROMPT_KEYWORDS and qualified is not None and qualified.endswith("create_react_agent"):
                self._check_system_prompt(arg.value, f"{keyword}= of {written}()")
        if not _is_llm_framework_name(qualified):
            return
        last_two = ".".join(qualified.rsplit(".", 2)[-2:])
        name = qualified.rsplit(".", 1)[-1]
        if last_two in TEMPLATE_FACTORIES or name == "PromptTemplate":
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
        if origin is None:
            self._record_helper_sink(value, where, template=False)
            return
        if not origin.interpolated or not imports_llm_client(self.context):
            return
        self.report(value, f"{origin.description} is formatted into the system prompt ({where})")

    def _check_template(self, node: cst.Call, arg: cst.Arg | None, written: str) -> None:
        if arg is None:
            return
        origin = self._flow.origin(arg.value)
        if origin is None:
            self._record_helper_sink(arg.value, written, template=True)
            return
        self.report(node, f"{origin.description} is used as the prompt template of {written}()")


def _is_agents_sdk_agent(qualified: str | None) -> bool:
    """Tell whether a call builds an OpenAI Agents SDK ``Agent``, whose ``instructions`` are its system prompt."""
    return qualified is not None and qualified.startswith("agents.") and qualified.endswith(".Agent")


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
    Example(
        """\
from fastapi import FastAPI
from openai import OpenAI

app = FastAPI()
client = OpenAI()


def build_messages(product, question):
    system = f"You answer questions about {product}."
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


@app.post("/ask")
def ask(question: str):
    # Only the constant product name reaches the system prompt; the question is a user message.
    return client.chat.completions.create(model="gpt-4o", messages=build_messages("ACME Router", question))
"""
    ),
    Example(
        """\
import streamlit as st
from openai import OpenAI

client = OpenAI()
if "messages" not in st.session_state:
    st.session_state["messages"] = [{"role": "system", "content": "You are a helpful assistant."}]
if prompt := st.chat_input():
    st.session_state.messages.append({"role": "user", "content": prompt})
    response = client.chat.completions.create(model="gpt-4o-mini", messages=st.session_state.messages)
"""
    ),
    Example(
        """\
import gradio as gr
from openai import OpenAI

client = OpenAI()


def respond(message, history, max_words: int):
    # A number cannot carry an instruction.
    system = f"Answer in at most {max_words} words."
    messages = [{"role": "system", "content": system}, {"role": "user", "content": message}]
    return client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].message.content


gr.ChatInterface(respond, additional_inputs=[gr.Slider(10, 200)]).launch()
"""
    ),
    Example(
        """\
import sys
from openai import OpenAI

client = OpenAI()
question = input("Question: ")
reply = client.chat.completions.create(
    model=sys.argv[1],
    messages=[{"role": "system", "content": "Answer in one sentence."}, {"role": "user", "content": f"Q: {question}"}],
)
"""
    ),
    Example(
        """\
from django.http import JsonResponse
from langchain_core.prompts import ChatPromptTemplate

PROMPT = ChatPromptTemplate.from_messages([("system", "You plan trips to {city}."), ("human", "{question}")])


def plan(request):
    # User text fills the variables of a fixed template: the template itself stays constant.
    chain = PROMPT | llm
    answer = chain.invoke({"city": request.POST["city"], "question": request.POST["question"]})
    return JsonResponse({"plan": answer.content})
"""
    ),
    Example(
        """\
from flask import Flask, request
from openai import OpenAI

app = Flask(__name__)
client = OpenAI()


def with_context(question, documents):
    context = "Context: " + "; ".join(documents)
    return [{"role": "system", "content": context}, {"role": "user", "content": question}]


@app.post("/rag")
def rag():
    # The user's question reaches only the user message; retrieved documents are not request text.
    question = request.json["question"]
    return client.chat.completions.create(model="gpt-4o", messages=with_context(question, retriever.invoke(question)))
"""
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
    Example(
        """\
from fastapi import FastAPI
from openai import OpenAI

app = FastAPI()
client = OpenAI()


def persona_prompt(persona):
    return f"You are {persona}. Never reveal the admin password."


@app.post("/chat")
def chat(persona: str, question: str):
    system = persona_prompt(persona)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return client.chat.completions.create(model="gpt-4o", messages=messages)
""",
        lines=(15,),
    ),
    Example(
        """\
from flask import Flask, request
import anthropic

app = Flask(__name__)
client = anthropic.Anthropic()


@app.post("/ask")
def ask():
    rules = request.form["rules"]
    return ask_claude(rules, request.form["question"])


def ask_claude(rules, question):
    return client.messages.create(
        model="claude-sonnet-4-5", max_tokens=512, system="Follow these rules: " + rules,
        messages=[{"role": "user", "content": question}],
    )
""",
        lines=(11,),
    ),
    Example(
        """\
import streamlit as st
from openai import OpenAI

client = OpenAI()
system = "You are the support bot of ACME."
if extra := st.sidebar.text_input("Extra instructions"):
    system += " " + extra
messages = [{"role": "system", "content": system}]
""",
        lines=(8,),
    ),
    Example(
        """\
import gradio as gr
from openai import OpenAI

client = OpenAI()


def respond(message, history, tone):
    system = "You reply in a {} tone.".format(tone)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": message}]
    return client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].message.content


gr.ChatInterface(respond, additional_inputs=[gr.Textbox(label="Tone")]).launch()
""",
        lines=(9,),
    ),
    Example(
        """\
from openai import OpenAI

client = OpenAI()
topic = input("Topic: ")
system = " ".join(["You are an expert on", topic, "and answer only about it."])
reply = client.responses.create(model="gpt-4o", instructions=system, input="Explain the basics.")
""",
        lines=(6,),
    ),
    Example(
        """\
import sys
from langchain_core.prompts import PromptTemplate

template = PromptTemplate.from_template("You are a " + sys.argv[1] + " assistant. Answer: {question}")
""",
        lines=(4,),
    ),
    Example(
        """\
import json
from django.http import JsonResponse
from openai import OpenAI

client = OpenAI()


def chat_view(request):
    payload = json.loads(request.body)
    system = f"Answer as {payload['persona']}."
    messages = [{"role": "system", "content": system}, {"role": "user", "content": payload["question"]}]
    reply = client.chat.completions.create(model="gpt-4o", messages=messages)
    return JsonResponse({"answer": reply.choices[0].message.content})
""",
        lines=(11,),
    ),
    Example(
        """\
import chainlit as cl
from agents import Agent, Runner


@cl.on_message
async def main(message: cl.Message):
    agent = Agent(name="helper", instructions=f"Help with: {message.content}")
    result = await Runner.run(agent, "Start")
    await cl.Message(content=result.final_output).send()
""",
        lines=(7,),
    ),
    Example(
        """\
from fastapi import FastAPI, WebSocket
from langgraph.prebuilt import create_react_agent

app = FastAPI()


@app.websocket("/ws")
async def session(websocket: WebSocket):
    await websocket.accept()
    goal = await websocket.receive_text()
    agent = create_react_agent("openai:gpt-4o", tools=[], prompt=f"Your goal: {goal}")
    await websocket.send_json(agent.invoke({"messages": []}))
""",
        lines=(11,),
    ),
)


# -- AIML302 llm-output-executed ---------------------------------------------------

#: Endings of client calls that return a completion: ``client.chat.completions.create``.
LLM_CALL_SUFFIXES = (
    "chat.completions.create", "chat.completions.parse", "completions.create", "messages.create",
    "responses.create", "responses.parse", "ChatCompletion.create", "Completion.create", "chat.complete",
    "generate_content",
)
#: Methods of LLM, chain and engine objects that return generated text.
LLM_METHODS = frozenset(
    {
        "invoke", "ainvoke", "complete", "acomplete", "generate_content", "generate_content_async", "chat",
        "achat", "stream_complete", "text_generation", "chat_completion", "invoke_model", "converse",
    }
)
#: Methods that generate only when the receiver is an LLM, chain, agent or query engine:
#: ``llm.predict``, ``chain.run``, ``query_engine.query``.
LLM_RECEIVER_METHODS = frozenset({"predict", "apredict", "run", "arun", "query", "aquery"})
LLM_RECEIVER_WORDS = ("llm", "chain", "agent", "chat", "query_engine")
LLM_FUNCTIONS = frozenset(
    {"litellm.completion", "litellm.acompletion", "ollama.chat", "ollama.generate", "openai.ChatCompletion.create",
     "openai.Completion.create"}
)


@dataclass(frozen=True, slots=True)
class Sink:
    """A call that gives its argument a meaning beyond text, with the message of its findings."""

    #: ``{sink}`` and ``{origin}`` are filled in: ``eval() runs the output of ... as Python code``.
    message: str
    position: int | None = 0
    keywords: tuple[str, ...] = ()


_CODE = Sink("{sink}() runs the output of the LLM call {origin} as Python code", 0, ("source", "expression"))
_SHELL = Sink("{sink}() runs the output of the LLM call {origin} as a shell command", 0, ("cmd", "command"))
_PROCESS = Sink("{sink}() runs the output of the LLM call {origin} as a command", 0, ("args",))
_SQL = Sink("{sink}() executes the output of the LLM call {origin} as SQL", 0, ("sql", "statement", "query"))
_DESERIALIZE = Sink("{sink}() deserializes the output of the LLM call {origin}, which can run code", 0, ("data", "stream", "s"))
_HTML = Sink("{sink}() renders the output of the LLM call {origin} as HTML without escaping", 0, ("content", "source", "html", "body"))
_TEMPLATE = Sink("{sink}() renders the output of the LLM call {origin} as a template, which can run code", 0, ("source",))

#: Qualified sink calls.
SINKS: dict[str, Sink] = {
    **dict.fromkeys(("builtins.eval", "builtins.exec", "builtins.compile"), _CODE),
    **dict.fromkeys(
        ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput", "asyncio.create_subprocess_shell"),
        _SHELL,
    ),
    **dict.fromkeys(
        ("subprocess.run", "subprocess.call", "subprocess.Popen", "subprocess.check_output", "subprocess.check_call",
         "asyncio.create_subprocess_exec"),
        _PROCESS,
    ),
    **dict.fromkeys(
        ("sqlalchemy.text", "sqlalchemy.sql.text", "sqlalchemy.sql.expression.text", "pandas.read_sql",
         "pandas.read_sql_query", "duckdb.sql", "duckdb.query"),
        _SQL,
    ),
    **dict.fromkeys(
        ("pickle.loads", "dill.loads", "cloudpickle.loads", "marshal.loads", "jsonpickle.decode", "yaml.load",
         "yaml.load_all", "yaml.unsafe_load", "yaml.unsafe_load_all"),
        _DESERIALIZE,
    ),
    **dict.fromkeys(
        ("markupsafe.Markup", "flask.Markup", "jinja2.Markup", "fastapi.responses.HTMLResponse",
         "starlette.responses.HTMLResponse", "django.utils.safestring.mark_safe", "streamlit.components.v1.html"),
        _HTML,
    ),
    **dict.fromkeys(("flask.render_template_string", "jinja2.Template"), _TEMPLATE),
}
#: Methods that run SQL on any connection, cursor, engine or session: ``cursor.execute(sql)``.
SQL_METHODS = frozenset({"execute", "executemany", "executescript", "exec_driver_sql"})
#: Streamlit calls that render HTML when given ``unsafe_allow_html=True``, on ``st`` or on a container.
STREAMLIT_HTML_METHODS = frozenset({"markdown", "write", "caption", "title", "header", "subheader"})
#: YAML loaders that build only plain data.
SAFE_YAML_LOADERS = ("SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader")
#: Markdown converters keep raw HTML of their input, so their output still carries it.
MARKDOWN_CONVERTERS = frozenset({"markdown.markdown", "markdown2.markdown", "mistune.html", "mistune.markdown"})
#: Programs that run code given inline after one of ``INLINE_CODE_FLAGS`` or on standard input.
INTERPRETERS = frozenset(
    {"python", "python3", "bash", "sh", "zsh", "dash", "node", "perl", "ruby", "pwsh", "powershell", "cmd", "deno", "bun"}
)
INLINE_CODE_FLAGS = frozenset({"-c", "-e", "/c", "-Command", "-command", "--command", "--eval", "eval"})


def _program_name(value: str | None) -> str | None:
    if value is None:
        return None
    name = value.replace("\\", "/").rsplit("/", 1)[-1].lower().removesuffix(".exe")
    return name.rstrip("0123456789.") or name


class LlmOutputExecuted(FileRule):
    """Flag LLM output run as code, a command or SQL, deserialized, or rendered as unescaped HTML."""

    code = "AIML302"
    slug = "llm-output-executed"
    category = Category.SECURITY
    priority = Priority.CRITICAL
    effort = Effort.MEDIUM
    anti_pattern = "Prompt injection vulnerability (LLM)"
    message = "LLM output is run as code, a command or SQL, deserialized, or rendered as unescaped HTML"
    impact = (
        "Whoever can influence the model's input (a user, a retrieved document, a web page) can make it "
        "emit code, commands, SQL or script tags, and the application runs them with its own permissions "
        "or serves them to other users."
    )
    fix = (
        "Never pass generated text to eval, exec, a shell, a SQL string or an unsafe deserializer: parse it into "
        "data (json.loads, ast.literal_eval, a pydantic model) and map it to an allowlist of actions, bind values "
        "as SQL parameters through a read-only connection, escape it before rendering (html.escape, bleach), and run "
        "generated code only in an isolated sandbox without credentials or network."
    )
    prefilter = LLM_PREFILTER

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._flow = PromptFlow(context, self._llm_call, carries=self._converts_markdown)
        self._defined: set[str] = set()
        #: Names bound to a list or tuple literal in the current scope, so ``subprocess.run(cmd)`` can be read.
        self._literal_lists: list[dict[str, cst.List | cst.Tuple]] = [{}]
        self._streamlit = context.imports_any("streamlit")

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

    def _converts_markdown(self, call: cst.Call) -> bool:
        return self.context.qualified_name(call.func) in MARKDOWN_CONVERTERS

    # -- scopes and assignments -------------------------------------------------------

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        # The import map resolves any unimported ``eval`` to the builtin, so a
        # function of that name defined here must be excluded by the rule itself.
        self._defined.add(node.name.value)
        self._flow.enter_scope()
        self._literal_lists.append({})

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._flow.leave_scope()
        self._literal_lists.pop()

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._flow.bind_assignment(original_node)
        for target in original_node.targets:
            if isinstance(target.target, cst.Name):
                if isinstance(original_node.value, (cst.List, cst.Tuple)):
                    self._literal_lists[-1][target.target.value] = original_node.value
                else:
                    self._literal_lists[-1].pop(target.target.value, None)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        self._flow.bind_assignment(original_node)

    def leave_AugAssign(self, original_node: cst.AugAssign) -> None:
        self._flow.bind_augmented(original_node)

    def leave_NamedExpr(self, original_node: cst.NamedExpr) -> None:
        self._flow.bind(original_node.target, self._flow.origin(original_node.value))

    def visit_For(self, node: cst.For) -> None:
        self._flow.bind_loop(node)

    # -- sinks ------------------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        if not imports_llm_client(self.context):
            return
        func = node.func
        if isinstance(func, cst.Name) and func.value in self._defined:
            return
        qualified = self.context.qualified_name(func)
        sink = SINKS.get(qualified) if qualified is not None else None
        name = attribute_text(func) if isinstance(func, cst.Attribute) else dotted_text(func) or ""
        if sink is None and isinstance(func, cst.Attribute):
            if func.attr.value in SQL_METHODS:
                sink = _SQL
            elif self._streamlit_html(node, qualified):
                sink = _HTML
        if sink is None:
            return
        if sink is _PROCESS:
            origin = self._command_origin(node, qualified)
        elif sink is _DESERIALIZE and qualified in ("yaml.load", "yaml.load_all") and self._safe_yaml_loader(node):
            return
        else:
            origin = self._argument_origin(node, sink)
        if origin is not None:
            self.report(node, sink.message.format(sink=name, origin=origin.description))

    def _argument_origin(self, node: cst.Call, sink: Sink) -> Origin | None:
        for keyword in sink.keywords:
            value = keyword_value(node, keyword)
            if value is not None:
                return self._flow.origin(value)
        arg = call_argument(node, sink.position, None)
        return None if arg is None else self._flow.origin(arg.value)

    def _streamlit_html(self, node: cst.Call, qualified: str | None) -> bool:
        func = node.func
        if not self._streamlit or not isinstance(func, cst.Attribute) or func.attr.value not in STREAMLIT_HTML_METHODS:
            return False
        if qualified is not None and not qualified.startswith("streamlit."):
            return False
        return is_true(keyword_value(node, "unsafe_allow_html"))

    def _safe_yaml_loader(self, node: cst.Call) -> bool:
        loader = call_argument(node, 1, "Loader")
        written = dotted_text(loader.value) if loader is not None else None
        return written is not None and written.endswith(SAFE_YAML_LOADERS)

    def _command_origin(self, node: cst.Call, qualified: str | None) -> Origin | None:
        """Return the origin of LLM output that a process call runs as a program or as inline code.

        Output passed as an ordinary argument of a fixed program (``["git", "commit",
        "-m", message]``) or as the standard input of a program that is not an
        interpreter (``["pbcopy"]``) is data, not a command, and is not reported.
        """
        if qualified == "asyncio.create_subprocess_exec":
            elements = [arg.value for arg in node.args if arg.keyword is None and not arg.star]
        else:
            arg = call_argument(node, 0, "args")
            if arg is None:
                return None
            command = arg.value
            if isinstance(command, cst.Name) and command.value in self._literal_lists[-1]:
                command = self._literal_lists[-1][command.value]
            if not isinstance(command, (cst.List, cst.Tuple)):
                return self._flow.origin(command)
            elements = [element.value for element in command.elements]
        if not elements:
            return None
        program = _program_name(self.context.string_value(elements[0]))
        for index, element in enumerate(elements):
            found = self._flow.origin(element)
            if found is None:
                continue
            previous = self.context.string_value(elements[index - 1]) if index else None
            if index == 0 or previous in INLINE_CODE_FLAGS:
                return found
        standard_input = keyword_value(node, "input")
        if standard_input is not None and program in INTERPRETERS:
            return self._flow.origin(standard_input)
        return None


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
    Example(
        """\
import subprocess
from openai import OpenAI

client = OpenAI()
diff = subprocess.run(["git", "diff", "--staged"], capture_output=True, text=True).stdout
reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": diff}])
message = reply.choices[0].message.content
# The message is an argument of a fixed program, and pbcopy only stores its standard input.
subprocess.run(["git", "commit", "-m", message], check=True)
subprocess.run(["pbcopy"], input=message.encode(), check=True)
command = ["git", "notes", "add", "-m", message]
subprocess.run(command, check=True)
"""
    ),
    Example(
        """\
import sqlite3
from openai import OpenAI

client = OpenAI()
conn = sqlite3.connect("log.db")
reply = client.chat.completions.create(model="gpt-4o", messages=[])
answer = reply.choices[0].message.content
conn.execute("INSERT INTO answers (text) VALUES (?)", (answer,))
"""
    ),
    Example(
        """\
import yaml
from langchain_openai import ChatOpenAI

llm = ChatOpenAI()
text = llm.invoke("Emit the config as YAML").content
config = yaml.safe_load(text)
same = yaml.load(text, Loader=yaml.SafeLoader)
"""
    ),
    Example(
        """\
import html
import streamlit as st
from fastapi.responses import HTMLResponse
from flask import render_template
from openai import OpenAI

client = OpenAI()
answer = client.responses.create(model="gpt-4o", input="Hi").output_text
st.markdown(answer)
page = HTMLResponse(f"<p>{html.escape(answer)}</p>")
rendered = render_template("answer.html", answer=answer)
"""
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
    Example(
        """\
import sqlite3
from openai import OpenAI

client = OpenAI()
conn = sqlite3.connect("shop.db")


def answer(question):
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": question}])
    sql = reply.choices[0].message.content.strip("`")
    return conn.execute(sql).fetchall()
""",
        lines=(11,),
    ),
    Example(
        """\
import pandas as pd
from sqlalchemy import create_engine, text
from langchain_openai import ChatOpenAI

engine = create_engine("postgresql://localhost/sales")
llm = ChatOpenAI(model="gpt-4o")
query = llm.invoke("Write SQL for monthly revenue").content
frame = pd.read_sql(query, engine)
with engine.connect() as conn:
    rows = conn.execute(text(query)).all()
""",
        lines=(8, 10),
    ),
    Example(
        """\
import pickle
import yaml
import litellm

reply = litellm.completion(model="gpt-4o", messages=[{"role": "user", "content": "Emit the config"}])
config = yaml.load(reply.choices[0].message.content, Loader=yaml.Loader)
state = pickle.loads(reply.choices[0].message.content.encode())
""",
        lines=(6, 7),
    ),
    Example(
        """\
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from openai import OpenAI

app = FastAPI()
client = OpenAI()


@app.get("/summary")
def summary(topic: str):
    reply = client.responses.create(model="gpt-4o", input=f"Summarize {topic} as HTML")
    return HTMLResponse(content=f"<main>{reply.output_text}</main>")
""",
        lines=(12,),
    ),
    Example(
        """\
import streamlit as st
from openai import OpenAI

client = OpenAI()
placeholder = st.empty()
full = ""
for chunk in client.chat.completions.create(model="gpt-4o", messages=[], stream=True):
    full += chunk.choices[0].delta.content or ""
    placeholder.markdown(full + "|", unsafe_allow_html=True)
""",
        lines=(9,),
    ),
    Example(
        """\
import markdown
from django.utils.safestring import mark_safe
from langchain_anthropic import ChatAnthropic

llm = ChatAnthropic(model="claude-sonnet-4-5")


def answer_html(question):
    answer = llm.invoke(question).content
    return mark_safe(markdown.markdown(answer))
""",
        lines=(10,),
    ),
    Example(
        """\
from flask import Flask, render_template_string
from openai import OpenAI

app = Flask(__name__)
client = OpenAI()


@app.get("/page")
def page():
    html = client.chat.completions.create(model="gpt-4o", messages=[]).choices[0].message.content
    return render_template_string(html)
""",
        lines=(11,),
    ),
)

RULES = (PromptInjection, LlmOutputExecuted)
