"""Supply-chain rules: models and data fetched from outside the repository at run time."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from pytest_aiml.engine.ast_facts import AstFacts, argument, unpacks_kwargs
from pytest_aiml.engine.context import ModuleContext, call_argument, has_star_kwargs, is_true, keyword_value
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority
from pytest_aiml.rules.flow import all_parameters, dotted_text

#: A full git commit id, the only revision the Hub cannot point at other files later.
COMMIT_HASH = re.compile(r"[0-9a-fA-F]{40}")
#: An abbreviated commit id: it still names one commit today, but a new commit or a branch may share it.
SHORT_COMMIT_HASH = re.compile(r"[0-9a-fA-F]{7,39}")
#: The shape of a Hub repository id: ``name`` or ``namespace/name``, with no leading ``.`` or ``-``.
HUB_REPO_ID = re.compile(r"(?:[A-Za-z0-9_][\w.-]*/)?[A-Za-z0-9_][\w.-]*")
LOCAL_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")
WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
#: ``datasets.load_dataset`` builders that read local files or other sources, not a Hub repository
#: (the modules under ``datasets/packaged_modules``).
PACKAGED_DATASET_BUILDERS = frozenset(
    {
        "arrow", "audiofolder", "bids", "cache", "conll", "csv", "dicomfolder", "elasticsearch", "eval", "fasta",
        "fastq", "genbank", "generator", "h5folder", "hdf5", "iceberg", "imagefolder", "json", "lance", "meshfolder",
        "midifolder", "mmcif", "niftifolder", "pandas", "parquet", "pdb", "pdffolder", "spark", "sparse_csv", "sql",
        "text", "tsfile", "tsv", "videofolder", "vortex", "webdataset", "xml", "zarr", "zarrfolder",
    }
)


@dataclass(frozen=True, slots=True)
class HubDownload:
    """Position and keyword names of the repository id in one Hub-downloading API."""

    position: int
    keywords: tuple[str, ...]
    #: Packaged builder names that make the call read local data instead.
    local_names: frozenset[str] = frozenset()


_REPO_ID = HubDownload(0, ("repo_id",))
_DATASET = HubDownload(0, ("path",), PACKAGED_DATASET_BUILDERS)
_SENTENCE_MODEL = HubDownload(0, ("model_name_or_path", "model_name"))
#: ``transformers``, ``diffusers`` and most other ``from_pretrained`` methods.
_PRETRAINED = HubDownload(0, ("pretrained_model_name_or_path",))
#: ``peft.PeftModel.from_pretrained(base_model, model_id)`` takes the adapter id second.
_PEFT_ADAPTER = HubDownload(1, ("model_id",))

HUB_CALLS: dict[str, HubDownload] = {
    "huggingface_hub.hf_hub_download": _REPO_ID,
    "huggingface_hub.file_download.hf_hub_download": _REPO_ID,
    "huggingface_hub.snapshot_download": _REPO_ID,
    "huggingface_hub._snapshot_download.snapshot_download": _REPO_ID,
    "datasets.load_dataset": _DATASET,
    "datasets.load.load_dataset": _DATASET,
    "datasets.load_dataset_builder": _DATASET,
    "datasets.load.load_dataset_builder": _DATASET,
    # Without a model, pipeline() takes the task's default model at a revision that
    # transformers chooses with it, so only an explicit model is checked.
    "transformers.pipeline": HubDownload(1, ("model",)),
    "transformers.pipelines.pipeline": HubDownload(1, ("model",)),
    "sentence_transformers.SentenceTransformer": _SENTENCE_MODEL,
    "sentence_transformers.SentenceTransformer.SentenceTransformer": _SENTENCE_MODEL,
    "sentence_transformers.CrossEncoder": _SENTENCE_MODEL,
    "sentence_transformers.cross_encoder.CrossEncoder": _SENTENCE_MODEL,
    "sentence_transformers.cross_encoder.CrossEncoder.CrossEncoder": _SENTENCE_MODEL,
}


def is_local_path(text: str) -> bool:
    """Tell whether a name-or-path argument is a local path rather than a Hub repository id.

    Absolute, home-relative (``~``) and explicitly relative (``./``, ``../``) paths
    are local, and so is anything a Hub repository id cannot be, such as a path
    with two or more folders. A bare relative folder like ``checkpoints/final`` has
    the shape of ``namespace/name`` and is read as a Hub id, as the libraries do when
    no such folder exists.
    """
    if text in (".", "..") or text.startswith(LOCAL_PREFIXES) or WINDOWS_DRIVE.match(text):
        return True
    return HUB_REPO_ID.fullmatch(text) is None or ".." in text


class UnpinnedHubDownload(FileRule):
    """Flag Hugging Face Hub downloads that do not pin ``revision`` to a commit hash.

    Checked calls: ``from_pretrained`` on any receiver (transformers, diffusers,
    peft), ``huggingface_hub.hf_hub_download`` and ``snapshot_download``,
    ``datasets.load_dataset`` and ``load_dataset_builder``, ``transformers.pipeline``
    with a model, and ``sentence_transformers.SentenceTransformer`` / ``CrossEncoder``.
    A revision or repository id that is neither a literal nor a module-level string
    constant is unknown and not reported. So is a call with ``**kwargs`` and no
    ``revision=``, and one with ``local_files_only=True``.
    """

    code = "AIML102"
    slug = "unpinned-hub-download"
    category = Category.SECURITY
    priority = Priority.HIGH
    effort = Effort.LOW
    anti_pattern = None
    message = "a Hugging Face Hub download without a revision pinned to a commit hash"
    impact = (
        "Without a pinned commit, every run fetches whatever the repository's branch holds at that moment: "
        "its owner, or anyone who takes over the account, can replace the weights, the tokenizer or the "
        "remote code, and training or serving silently changes or runs code it was never reviewed with."
    )
    fix = (
        "Pass revision= with the full 40-character commit hash of the reviewed version (shown in the "
        "repository's commit history on the Hub), for example from a module-level constant. For a local "
        "folder, write the path as ./folder so that it is not read as a Hub repository id."
    )
    prefilter = (
        "from_pretrained", "hf_hub_download", "snapshot_download", "load_dataset", "pipeline",
        "SentenceTransformer", "CrossEncoder",
    )

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # "pipeline" and "load_dataset" are common words. A report needs a Hub call whose arguments
        # include a string (the repository id) and whose revision is missing, None or a string.
        constants = _string_names(facts)
        for node, names in facts.resolved_calls:
            pretrained = isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained"
            if not pretrained and names.isdisjoint(HUB_CALLS):
                continue
            local_only = argument(node, None, "local_files_only")
            if isinstance(local_only, ast.Constant) and local_only.value is True:
                continue
            values = [*node.args, *(keyword.value for keyword in node.keywords)]
            if any(_may_be_string(value, constants) for value in values) and _may_report_revision(node, constants):
                return True
        return False

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        #: Parameter names of the enclosing functions, which shadow module-level constants.
        self._parameters: list[frozenset[str]] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._parameters.append(frozenset(param.name.value for param in all_parameters(node)))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._parameters.pop()

    def visit_Call(self, node: cst.Call) -> None:
        found = self._hub_call(node)
        if found is None:
            return
        label, download = found
        if is_true(keyword_value(node, "local_files_only")):
            return
        repo_id = self._repo_id(node, download)
        if repo_id is None or is_local_path(repo_id) or repo_id in download.local_names:
            return
        self._check_revision(node, label, repo_id)

    def _hub_call(self, node: cst.Call) -> tuple[str, HubDownload] | None:
        name = self.context.qualified_name(node.func)
        if name in HUB_CALLS:
            return name, HUB_CALLS[name]
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "from_pretrained":
            return None
        label = name or dotted_text(func) or "from_pretrained"
        parts = label.split(".")
        if parts[0] == "peft" and len(parts) >= 2 and parts[-2].startswith("PeftModel"):
            return label, _PEFT_ADAPTER
        return label, _PRETRAINED

    def _repo_id(self, node: cst.Call, download: HubDownload) -> str | None:
        argument = None
        for keyword in download.keywords:
            argument = call_argument(node, None, keyword)
            if argument is not None:
                break
        if argument is None:
            argument = call_argument(node, download.position, None)
        return None if argument is None else self._string(argument.value)

    def _check_revision(self, node: cst.Call, label: str, repo_id: str) -> None:
        revision_expr = keyword_value(node, "revision")
        if revision_expr is None or (isinstance(revision_expr, cst.Name) and revision_expr.value == "None"):
            if revision_expr is None and has_star_kwargs(node):
                return
            self.report(
                node,
                f"{label}() downloads '{repo_id}' from the Hugging Face Hub without revision=, "
                "so it gets whatever the default branch holds at run time",
            )
            return
        revision = self._string(revision_expr)
        if revision is None or COMMIT_HASH.fullmatch(revision):
            return
        if SHORT_COMMIT_HASH.fullmatch(revision):
            self.report(
                node,
                f"{label}() downloads '{repo_id}' at revision '{revision}', an abbreviated commit hash "
                "instead of the full 40-character one",
            )
        else:
            self.report(
                node,
                f"{label}() downloads '{repo_id}' at revision '{revision}', a branch or tag name, "
                "which is mutable: it can be moved to other files",
            )

    def _string(self, expr: cst.BaseExpression) -> str | None:
        if isinstance(expr, cst.Name) and any(expr.value in names for names in self._parameters):
            return None
        return self.context.string_value(expr)


def _string_names(facts: AstFacts) -> frozenset[str]:
    """Names bound to a string literal somewhere: a superset of ModuleContext's module-level constants."""
    return frozenset(
        target.id
        for node in facts.nodes(ast.Assign, ast.AnnAssign)
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    )


def _may_be_string(expr: ast.expr, constants: frozenset[str]) -> bool:
    """Tell whether ``context.string_value`` may read a string from ``expr``: a literal or a string constant."""
    return (isinstance(expr, ast.Constant) and isinstance(expr.value, str)) or (
        isinstance(expr, ast.Name) and expr.id in constants
    )


def _may_report_revision(node: ast.Call, constants: frozenset[str]) -> bool:
    """Tell whether ``_check_revision`` may report the call's revision: missing, None, or a string not a full hash."""
    revision = argument(node, None, "revision")
    if revision is None:
        return not unpacks_kwargs(node)
    if isinstance(revision, ast.Constant):
        return revision.value is None or (isinstance(revision.value, str) and not COMMIT_HASH.fullmatch(revision.value))
    return isinstance(revision, ast.Name) and revision.id in constants


COMMIT = "3f2c9d1b7a4e6c8d0b1a2f3e4d5c6b7a8f9e0d1c"

UnpinnedHubDownload.VALID = (
    Example(f"from transformers import AutoModel\nmodel = AutoModel.from_pretrained('bert-base-uncased', revision='{COMMIT}')\n"),
    Example(
        f"import transformers as tf\nBERT_REVISION = '{COMMIT}'\n"
        "tok = tf.AutoTokenizer.from_pretrained('google-bert/bert-base-uncased', revision=BERT_REVISION)\n"
    ),
    Example(
        "from transformers import AutoModelForCausalLM\n"
        "local = AutoModelForCausalLM.from_pretrained('./checkpoints/final')\n"
        "home = AutoModelForCausalLM.from_pretrained('~/models/llama')\n"
        "absolute = AutoModelForCausalLM.from_pretrained('/opt/models/llama')\n"
        "parent = AutoModelForCausalLM.from_pretrained('../exported/llama')\n"
    ),
    Example(
        "from huggingface_hub import hf_hub_download\n"
        "def fetch(config, revision):\n"
        "    # values from configuration are unknown here, not wrong\n"
        "    weights = hf_hub_download(config.repo_id, 'model.safetensors', revision=config.revision)\n"
        "    return hf_hub_download('org/model', 'config.json', revision=revision)\n"
    ),
    Example(
        "from datasets import load_dataset\n"
        "train = load_dataset('csv', data_files='data/train.csv')\n"
        "frames = load_dataset('parquet', data_files={'train': 'train.parquet'})\n"
    ),
    Example(
        "from transformers import pipeline\n"
        f"classify = pipeline('text-classification', model='distilbert/distilbert-base-uncased', revision='{COMMIT}')\n"
        "offline = pipeline('ner', model='dslim/bert-base-NER', local_files_only=True)\n"
    ),
    Example(
        "from sentence_transformers import SentenceTransformer\n"
        "def embedder(**options):\n"
        "    return SentenceTransformer('all-MiniLM-L6-v2', **options)\n"
    ),
)
UnpinnedHubDownload.INVALID = (
    Example("from transformers import AutoModel\nmodel = AutoModel.from_pretrained('bert-base-uncased')\n", lines=(2,)),
    Example(
        "import huggingface_hub as hub\n"
        "path = hub.snapshot_download('meta-llama/Llama-3.1-8B', revision='main')\n"
        "weights = hub.hf_hub_download(repo_id='org/model', filename='model.safetensors', revision='v1.0')\n",
        lines=(2, 3),
    ),
    Example(
        "from datasets import load_dataset as load\nREVISION = 'main'\nDATASET = 'stanfordnlp/imdb'\n"
        "imdb = load(DATASET, split='train', revision=REVISION)\n",
        lines=(4,),
    ),
    Example(
        "from transformers import pipeline\nsummarize = pipeline('summarization', model='facebook/bart-large-cnn')\n",
        lines=(2,),
    ),
    Example(
        "from sentence_transformers import SentenceTransformer\n"
        "model = SentenceTransformer('sentence-transformers/all-MiniLM-L6-v2', revision='a1b2c3d')\n",
        lines=(2,),
    ),
    Example(
        "from diffusers import StableDiffusionPipeline\nfrom peft import PeftModel\n"
        "pipe = StableDiffusionPipeline.from_pretrained('stabilityai/stable-diffusion-2-1', revision=None)\n"
        "adapted = PeftModel.from_pretrained(base_model, 'org/lora-adapter')\n",
        lines=(3, 4),
    ),
    Example(
        "def load(model_class):\n    return model_class.from_pretrained('org/classifier')\n",
        lines=(2,),
    ),
)

RULES = (UnpinnedHubDownload,)
