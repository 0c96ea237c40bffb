"""Secret rules: API keys of LLM and ML services written into the source.

Keys are recognised by their provider's published format (``sk-proj-``, ``hf_``,
``AIza``...), not by entropy. Providers whose keys carry no prefix (Weights & Biases,
Cohere, Mistral, older Pinecone keys) are recognised only where the literal is bound
to that provider's variable or client argument. The messages and snippets of this rule
contain only a masked form of the key, so reports, baselines and caches never store it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytest_aiml.engine.ast_facts import AstFacts
from pytest_aiml.engine.context import ModuleContext, call_argument, literal_string
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority


@dataclass(frozen=True, slots=True)
class KeyFormat:
    """A provider's key format, matched anywhere inside a string literal."""

    label: str
    pattern: re.Pattern[str]


def _key(body: str) -> re.Pattern[str]:
    # A key starts and ends at a character that cannot belong to it, so ``task-...``
    # never reads as ``sk-...``.
    return re.compile(rf"(?<![A-Za-z0-9_\-])(?:{body})(?![A-Za-z0-9_\-])")


#: Prefixed formats, most specific first: ``sk-ant-`` before OpenAI's ``sk-``.
KEY_FORMATS: tuple[KeyFormat, ...] = (
    KeyFormat("Anthropic API key", _key(r"sk-ant-[a-z]+\d*-[A-Za-z0-9_\-]{32,}")),
    KeyFormat("OpenAI API key", _key(r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{32,}")),
    KeyFormat("OpenAI API key", _key(r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}")),
    KeyFormat("OpenAI-style API key", _key(r"sk-[A-Za-z0-9]{40,}")),
    KeyFormat("Hugging Face token", _key(r"hf_[A-Za-z0-9]{34}")),
    KeyFormat("Replicate API token", _key(r"r8_[A-Za-z0-9]{37}")),
    KeyFormat("Groq API key", _key(r"gsk_[A-Za-z0-9]{52}")),
    KeyFormat("Google API key", _key(r"AIza[0-9A-Za-z_\-]{35}")),
    KeyFormat("LangSmith API key", _key(r"lsv2_(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{10}")),
    KeyFormat("Pinecone API key", _key(r"pcsk_[A-Za-z0-9]{4,}_[A-Za-z0-9]{40,}")),
    KeyFormat("Together AI API key", _key(r"tgp_v1_[A-Za-z0-9_\-]{30,}")),
)
AWS_ACCESS_KEY_ID = _key(r"(?:AKIA|ASIA)[0-9A-Z]{16}")
AWS_SECRET_KEY = re.compile(r"[A-Za-z0-9/+=]{40}")
#: The text that some literal of a file with a finding contains, checked on ``ast`` strings
#: before libcst parses the file: a prefix of the formats above, or a run as long as the
#: shortest of the unprefixed shapes below. An AWS secret alone is never reported, only
#: beside an AKIA id.
_KEY_PREFIXES = re.compile(r"sk-|hf_|r8_|gsk_|AIza|lsv2_|pcsk_|tgp_v1_|AKIA|ASIA")
_UNPREFIXED_RUN = re.compile(r"[A-Za-z0-9]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

#: Keys without a prefix: the whole literal must have this shape, and it must be bound
#: to one of the names or client arguments below.
CONTEXT_FORMATS: dict[str, tuple[str, re.Pattern[str]]] = {
    "wandb": ("Weights & Biases API key", re.compile(r"[0-9a-f]{40}")),
    "cohere": ("Cohere API key", re.compile(r"[A-Za-z0-9]{40}")),
    "mistral": ("Mistral API key", re.compile(r"[A-Za-z0-9]{32}")),
    "pinecone": ("Pinecone API key", re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
}
#: Variable and environment names that hold one provider's key.
CONTEXT_NAMES = {
    "WANDB_API_KEY": "wandb", "COHERE_API_KEY": "cohere", "CO_API_KEY": "cohere",
    "MISTRAL_API_KEY": "mistral", "PINECONE_API_KEY": "pinecone",
}
#: Client calls that take one provider's key: qualified name -> (provider, keyword, position).
CONTEXT_CALLS: dict[str, tuple[str, str, int | None]] = {
    "wandb.login": ("wandb", "key", None),
    "cohere.Client": ("cohere", "api_key", 0),
    "cohere.ClientV2": ("cohere", "api_key", 0),
    "cohere.AsyncClient": ("cohere", "api_key", 0),
    "mistralai.Mistral": ("mistral", "api_key", None),
    "mistralai.client.MistralClient": ("mistral", "api_key", None),
    "pinecone.Pinecone": ("pinecone", "api_key", None),
    "pinecone.init": ("pinecone", "api_key", None),
}
ENVIRONMENT_SETTERS = frozenset({"os.environ.setdefault", "os.putenv"})

#: Words that mark a documentation placeholder or a test value, not a real key.
_PLACEHOLDER_WORDS = (
    "xxxx", "your", "dummy", "fake", "test", "placeholder", "replace", "changeme", "insert",
    "redacted", "sample", "secret", "0123456789", "abcdefghij", "...", "***",
)
#: Example credentials from the providers' own documentation, such as AWS's ``AKIAIOSFODNN7EXAMPLE``.
DOCUMENTED_EXAMPLES = frozenset({"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"})
_REPEATED = re.compile(r"(.)\1{5,}")
#: Capitalised words run together, as in a class name: ``AutoModelForSequenceClassification``.
_CAMEL_CASE_WORDS = re.compile(r"[a-z]*(?:[A-Z][a-z]{2,})+")


def is_placeholder(key: str) -> bool:
    """Tell whether a key-shaped value is evidently made up: a placeholder word, a run of one character,
    words run together like a class name, or too few distinct characters."""
    if key in DOCUMENTED_EXAMPLES:
        return True
    lowered = key.lower()
    if any(word in lowered for word in _PLACEHOLDER_WORDS) or "<" in key or "{" in key:
        return True
    if _REPEATED.search(key):
        return True
    if _CAMEL_CASE_WORDS.fullmatch(re.split(r"[_-]", key)[-1]):
        return True
    return len(set(key)) < 12


def mask(key: str) -> str:
    """Return the first 4 and last 2 characters of a key around an ellipsis; shorter keys keep only 4."""
    if len(key) < 16:
        return key[:4] + "…"
    return f"{key[:4]}…{key[-2:]}"


class HardcodedSecret(FileRule):
    """Flag API keys of LLM and ML services written as literals in code and notebooks."""

    code = "AIML103"
    slug = "hardcoded-secret"
    category = Category.SECURITY
    priority = Priority.CRITICAL
    effort = Effort.LOW
    anti_pattern = None
    message = "an API key of an LLM or ML service is written in the source"
    impact = (
        "A key in the source reaches every clone, fork, notebook export, container image and log that "
        "copies the file; anyone who reads it can spend the account's quota, read its models and data, "
        "and act as the team until the key is revoked."
    )
    fix = (
        "Revoke the key at the provider now, then read it at run time from the environment "
        "(os.environ['OPENAI_API_KEY']) or a secret manager, keep local values in an untracked .env "
        "file, and remove the key from the git history."
    )
    prefilter = (
        "sk-", "hf_", "r8_", "gsk_", "AIza", "AKIA", "ASIA", "lsv2_", "pcsk_", "tgp_v1_",
        "WANDB_API_KEY", "wandb", "COHERE", "CO_API_KEY", "cohere", "MISTRAL", "istral", "PINECONE", "inecone",
    )

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # "wandb" and "sk-" are in many modules, but a key needs a literal with a key prefix
        # or a run as long as the shortest unprefixed key shape.
        return any(_KEY_PREFIXES.search(value) or _UNPREFIXED_RUN.search(value) for value in facts.strings)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        #: Literal nodes whose value is bound to a provider's name or argument, by node id.
        self._bound: dict[int, str] = {}
        #: Parts of implicitly concatenated strings, checked once as the whole string.
        self._parts: set[int] = set()
        self._aws_ids: list[tuple[cst.CSTNode, str]] = []
        self._aws_secrets: list[tuple[cst.CSTNode, str]] = []

    # -- bindings: which literals hold a provider's key ------------------------------

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bind_target(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind_target(node.target, node.value)

    def visit_Dict(self, node: cst.Dict) -> None:
        for element in node.elements:
            if isinstance(element, cst.DictElement):
                name = literal_string(element.key)
                if name is not None:
                    self._bind_name(name, element.value)

    def visit_Call(self, node: cst.Call) -> None:
        name = self.context.qualified_name(node.func)
        if name is None:
            return
        if name in ENVIRONMENT_SETTERS:
            variable, value = call_argument(node, 0, None), call_argument(node, 1, None)
            if variable is not None and value is not None:
                self._bind_name(literal_string(variable.value) or "", value.value)
            return
        if name in CONTEXT_CALLS:
            provider, keyword, position = CONTEXT_CALLS[name]
            argument = call_argument(node, position, keyword)
            if argument is not None:
                self._bound[id(argument.value)] = provider
        for argument in node.args:
            if argument.keyword is not None and argument.keyword.value == "aws_secret_access_key":
                self._bound[id(argument.value)] = "aws_secret"

    def _bind_target(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self._bind_name(target.value, value)
        elif isinstance(target, cst.Attribute):
            self._bind_name(target.attr.value, value)
        elif isinstance(target, cst.Subscript) and len(target.slice) == 1:
            index = target.slice[0].slice
            if isinstance(index, cst.Index):
                self._bind_name(literal_string(index.value) or "", value)

    def _bind_name(self, name: str, value: cst.BaseExpression) -> None:
        upper = name.upper()
        if upper in CONTEXT_NAMES:
            self._bound[id(value)] = CONTEXT_NAMES[upper]
        elif "SECRET" in upper and "AWS" in upper or upper == "AWS_SECRET_ACCESS_KEY":
            self._bound[id(value)] = "aws_secret"

    # -- literals --------------------------------------------------------------------

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> None:
        # ``"sk-proj-" "abc..."`` is one key: check the whole value, not its parts.
        for part in (node.left, node.right):
            self._parts.add(id(part))
        if id(node) in self._parts:
            return
        value = node.evaluated_value
        if isinstance(value, str):
            self._check(node, value)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if id(node) in self._parts:
            return
        value = node.evaluated_value
        if isinstance(value, str):
            self._check(node, value)

    def visit_FormattedStringText(self, node: cst.FormattedStringText) -> None:
        self._check(node, node.value)

    def _check(self, node: cst.CSTNode, value: str) -> None:
        if len(value) < 20:
            return
        for key_format in KEY_FORMATS:
            match = key_format.pattern.search(value)
            if match and not is_placeholder(match.group(0)):
                self._report_key(node, key_format.label, match.group(0))
                return
        provider = self._bound.get(id(node))
        if provider == "aws_secret":
            if AWS_SECRET_KEY.fullmatch(value) and not is_placeholder(value):
                self._aws_secrets.append((node, value))
            return
        if provider is not None:
            label, shape = CONTEXT_FORMATS[provider]
            if shape.fullmatch(value) and not is_placeholder(value):
                self._report_key(node, label, value)
            return
        match = AWS_ACCESS_KEY_ID.search(value)
        if match and not is_placeholder(match.group(0)):
            self._aws_ids.append((node, match.group(0)))

    def leave_Module(self, original_node: cst.Module) -> None:
        # An access key id alone grants nothing; with its secret in the same file it is a credential.
        if not (self._aws_ids and self._aws_secrets):
            return
        for node, key in self._aws_ids:
            self._report_key(node, "AWS access key id", key, " with an AWS secret access key in the same file")
        for node, key in self._aws_secrets:
            self._report_key(node, "AWS secret access key", key)

    def _report_key(self, node: cst.CSTNode, label: str, key: str, detail: str = "") -> None:
        masked = mask(key)
        self.context.report(
            self.code,
            node,
            f"{label} {masked} is hardcoded{detail}; read it from the environment or a secret manager",
            snippet=f"{label} {masked}",
        )


# Example keys are assembled from pieces so that no key-shaped literal sits in this
# module. Each is made up and contains EXAMPLE, which the rule does not treat as a
# placeholder, because a key-shaped value is reported whatever it spells.
_BODY = "EXAMPLEQ7mZ2kLp9XvR4tNb8HcW3yJd6FgS1aEu5oKi0l"
_OPENAI = "sk-" + "proj-" + _BODY
_ANTHROPIC = "sk-" + "ant-api03-" + _BODY + "Tr"
_HUGGING_FACE = "hf_" + _BODY[:34]
_GROQ = "gsk_" + _BODY + "VcYh9Wq"
_GOOGLE = "AIza" + "Sy" + _BODY[:33]
_REPLICATE = "r8_" + _BODY[:37]
_LANGSMITH = "lsv2_" + "pt_" + "9f3c1a7e5b2d4860af1e3c7b9d5a2f84" + "_" + "3b7e1d9a5c"
_WANDB = "3f9a1c7e5b2d4860af1e3c7b9d5a2f8461c0e7d2"
_AWS_ID = "AKIA" + "EXAMPLEQ7MZ2KLP9"
_AWS_SECRET = "EXAMPLEq7Mz2kLp9XvR4tNb8HcW3yJd6FgS1a/5o"

HardcodedSecret.VALID = (
    Example("import os\nfrom openai import OpenAI\nclient = OpenAI(api_key=os.environ['OPENAI_API_KEY'])\n"),
    Example("import os\nkey = os.getenv('ANTHROPIC_API_KEY')\n"),
    Example("# Documentation placeholders are not keys.\nOPENAI_API_KEY = 'sk-...'\nHF_TOKEN = 'hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'\n"),
    Example(f"client = OpenAI(api_key='sk-proj-{'x' * 40}')\n"),
    Example("api_key = '<your key>'\nother = 'sk-proj-YOUR_KEY_HERE_YOUR_KEY_HERE_YOUR_KEY_HERE'\n"),
    Example(f"# A test fixture with an evidently fake value.\nFAKE_KEY = 'sk-proj-fake{_BODY[7:]}'\n", path="tests/test_client.py"),
    Example("# AWS's documented example id, and an id with no secret beside it.\naws_id = 'AKIAIOSFODNN7EXAMPLE'\n"
            f"bucket_owner = '{_AWS_ID}'\n"),
    Example(f"# 40 hex characters that are not bound to W&B: a checksum.\nSHA1 = '{_WANDB}'\n"),
    Example("# 'sk-' inside a word is not a key prefix.\nlabel = 'task-specific-finetuning-of-the-large-model-v2'\n"),
    Example("import wandb\nwandb.login(key=os.environ['WANDB_API_KEY'])\nwandb.login()\n"),
    Example(f"text = 'prefix hf_{'a1' * 17} suffix'\n"),
    # Hugging Face tokens have exactly 34 characters after the prefix; a class name is longer.
    Example("LOADER = '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'\n"),
    # A UI test that types a documentation placeholder into the key field.
    Example("def test_chat(app):\n    app.text_input(key='openai_key').set_value('sk-...')\n", path="app_test.py"),
)
HardcodedSecret.INVALID = (
    Example(f"from openai import OpenAI\nclient = OpenAI(api_key='{_OPENAI}')\n", lines=(2,)),
    Example(f"import anthropic\nclient = anthropic.Anthropic(api_key=\"{_ANTHROPIC}\")\n", lines=(2,)),
    Example(f"from huggingface_hub import login\nlogin(token='{_HUGGING_FACE}')\n", lines=(2,)),
    Example(f"import os\nos.environ['GROQ_API_KEY'] = '{_GROQ}'\nGOOGLE_API_KEY = '{_GOOGLE}'\n", lines=(2, 3)),
    Example(f"import replicate\nclient = replicate.Client(api_token=f'{_REPLICATE}')\n", lines=(2,)),
    Example(f"LANGCHAIN_API_KEY = '{_LANGSMITH}'\n", lines=(1,)),
    Example(f"import wandb\nwandb.login(key='{_WANDB}')\n", lines=(2,)),
    Example(f"import os\nos.environ['WANDB_API_KEY'] = '{_WANDB}'\n", lines=(2,)),
    Example(
        f"import boto3\ns3 = boto3.client('s3', aws_access_key_id='{_AWS_ID}',\n"
        f"                  aws_secret_access_key='{_AWS_SECRET}')\n",
        lines=(2, 3),
    ),
    Example(f"headers = {{'Authorization': 'Bearer ' '{_OPENAI}'}}\n", lines=(1,)),
)

RULES = (HardcodedSecret,)
