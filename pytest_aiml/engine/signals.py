"""Cheap text signals of ML practice, read from every Python file and notebook.

The inventory must cover every file, including those no rule needs to parse, so it
works on text: the imported modules (from ``import`` lines) and a fixed table of
regular expressions. A signal is a fact about usage ("imports mlflow"), never a
finding on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pytest_aiml.engine.notebooks import python_code

_IMPORT_LINE = re.compile(r"^[ \t]*(?:from[ \t]+([A-Za-z_][\w.]*)[ \t]+import|import[ \t]+([A-Za-z_][\w., \t]*))", re.MULTILINE)

#: Signal name -> pattern, searched in the text of Python sources and notebook cells.
CODE_SIGNALS: Mapping[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.MULTILINE)
    for name, pattern in {
        "fit_call": r"\.fit\(|\.fit_generator\(|\.train_model\(",
        "backward_call": r"\.backward\(",
        "optimizer_step": r"\.step\(\s*\)",
        "lightning_trainer": r"\bTrainer\s*\(",
        "main_guard": r"^if\s+__name__\s*==\s*['\"]__main__['\"]\s*:",
        "mlflow_registry": r"mlflow\.register_model|MlflowClient\(|registered_model_name\s*=|models:/",
        "vertex_registry": r"aiplatform\.Model\.upload|Model\.upload\(",
        "sagemaker_registry": r"ModelPackage|model_package_group|create_model_package",
        "custom_registry": r"model_registry|ModelRegistry",
        "distributed": r"DistributedDataParallel|torch\.distributed|init_process_group|deepspeed|horovod|"
        r"strategy\s*=\s*['\"](ddp|fsdp|deepspeed)|tf\.distribute|MirroredStrategy|accelerate\s+import|Accelerator\(",
        "tensorboard": r"SummaryWriter\(|tf\.summary|TensorBoardLogger|TensorBoard\(",
        "lightning_logger": r"(MLFlowLogger|WandbLogger|NeptuneLogger|CometLogger|CSVLogger)\(",
        "trainer_report_to": r"report_to\s*=\s*\[?\s*['\"](wandb|mlflow|tensorboard|comet_ml|neptune|clearml|dvclive|"
        r"aim|azure_ml|trackio|swanlab|all)['\"]",
        "gpu_usage": r"\.cuda\(|['\"]cuda(:\d+)?['\"]|torch\.cuda\.|accelerator\s*=\s*['\"]gpu|gpus\s*=|"
        r"tf\.config\.list_physical_devices\(['\"]GPU|device_map\s*=",
        "mixed_precision": r"autocast\(|GradScaler\(|mixed_precision|precision\s*=\s*['\"]?(16|bf16)",
        "torch_compile": r"torch\.compile\(",
        "quantization": r"quantize_dynamic|torch\.quantization|torch\.ao\.quantization|load_in_8bit|load_in_4bit|BitsAndBytesConfig",
        "caching": r"lru_cache|functools\.cache\b|@cache\b|redis\.|Redis\(|cachetools|memcache|TTLCache",
        "prediction_logging": r"log(ger)?\.\w+\([^)\n]*(predict|prediction|inference|score)",
        "moderation": r"moderations\.create|\.moderate\(",
        # Llama Guard, Amazon Bedrock guardrails, Azure AI Content Safety and Lakera Guard's HTTP API.
        "safety_classifier": r"Llama[-_ ]?Guard|llama[-_ ]?guard|guardrailIdentifier|guardrailConfig|ContentSafetyClient|"
        r"api\.lakera\.ai",
        # Functions that screen what goes into the model and what comes out of it.
        "input_guard": r"def\s+\w*(validate|check|moderate|screen|sanitize|sanitise|filter|guard)_\w*"
        r"(input|prompt|query|question|message)s?\b",
        "output_guard": r"def\s+\w*(validate|check|moderate|screen|sanitize|sanitise|filter|guard)_\w*"
        r"(output|response|answer|completion|reply|generation)s?\b",
        # Calls that generate text with an LLM client or framework, and constructors of LLM chat models.
        "llm_call": r"\.chat\.completions\.(create|parse|stream)\(|\.completions\.create\(|\.messages\.(create|stream)\(|"
        r"\.responses\.(create|parse|stream)\(|ChatCompletion\.a?create\(|Completion\.a?create\(|completion\(|"
        r"generate_content(_async)?\(|\.chat\.(complete|stream)(_async)?\(|ollama\.(chat|generate)\(|\.chat\(|\.achat\(|"
        r"\.complete\(|\.acomplete\(|invoke_model\(|\.converse\(|text_generation\(|chat_completion\(|init_chat_model\(|"
        r"ChatOpenAI\(|AzureChatOpenAI\(|ChatAnthropic\(|ChatOllama\(|ChatCohere\(|ChatMistralAI\(|ChatVertexAI\(|"
        r"ChatGoogleGenerativeAI\(|ChatGroq\(|ChatBedrock(Converse)?\(|ChatLiteLLM\(|ChatFireworks\(|ChatTogether\(|"
        r"ChatDatabricks\(|ChatHuggingFace\(|ChatDeepSeek\(|ChatXAI\(|ChatPerplexity\(|ChatNVIDIA\(|"
        r"as_chat_engine\(|as_query_engine\(|GenerativeModel\(|llm\(|\.invoke\(|\.ainvoke\(|\.predict\(",
        # Ways to serve a request from another model when the first one fails.
        "llm_fallback": r"with_fallbacks\(|fallbacks\s*=|FallbackModel\(|Router\(\s*model_list|"
        r"extra_body\s*=\s*\{[^}]*[\"']models[\"']\s*:|route[\"']\s*:\s*[\"']fallback",
        "llm_usage": r"\.usage\b|total_tokens|prompt_tokens|completion_tokens|input_tokens|output_tokens|token_usage|"
        r"get_openai_callback|usage_metadata|UsageMetadataCallbackHandler|completion_cost|response_cost|"
        r"success_callback|on_llm_end",
        # Tracing that records token usage per call: LangSmith, Helicone, OpenLLMetry, OpenLIT, Phoenix, MLflow, Weave.
        "llm_tracing": r"LANGCHAIN_TRACING_V2|LANGSMITH_TRACING|@traceable|wrap_openai|Traceloop\.init|helicone|hconeai|"
        r"openlit\.init|OpenAIInstrumentor|LangChainInstrumentor|LlamaIndexInstrumentor|set_global_handler\(|"
        r"mlflow\.(openai|langchain|anthropic|litellm|llama_index|gemini)\.autolog|weave\.init|agentops\.init",
        "token_budget": r"Budget|budget|BUDGET|cost_per|price_per|COST_PER|PRICE_PER",
        "rag": r"VectorStoreIndex|vectorstore|VectorStore|as_retriever\(|similarity_search|Retriever|embed_documents|"
        r"\.query\(\s*query_texts",
        "prompt_hub": r"hub\.pull\(|load_prompt\(|pull_prompt\(|push_prompt\(|PromptLayer|langfuse.*get_prompt|get_prompt\(",
        "guardrail_layer": r"class\s+\w*Guardrail\w*|def\s+\w*guardrail\w*|moderate_(input|output)|content_filter",
        "sklearn_search": r"GridSearchCV|RandomizedSearchCV|HalvingGridSearchCV",
        "batch_inference": r"\.predict\([^)\n]*(read_csv|read_parquet|batch)|spark|batch_predict|BatchPredict",
        "feature_transform": r"StandardScaler|MinMaxScaler|OneHotEncoder|ColumnTransformer|FeatureUnion|LabelEncoder|"
        r"RobustScaler|TfidfVectorizer|SimpleImputer",
        "user_data_input": r"request\.(json|form|args|get_json|data|values)|Body\(|BaseModel\)",
        "data_validation": r"pandera|great_expectations|tensorflow_data_validation|deepchecks|\.validate\(|Schema\(",
        "validation_library": r"pandera|great_expectations|tensorflow_data_validation|deepchecks|pointblank|"
        r"soda\.scan|from soda|evidently\.test|TestSuite\(|frictionless|whylogs|DataFrameSchema|ExampleValidator|"
        r"SchemaGen|jsonschema|model_validate\(|parse_obj\(|TypeAdapter\(",
        "data_loading": r"read_csv\(|read_parquet\(|read_json\(|read_excel\(|read_feather\(|read_table\(|read_orc\(|"
        r"read_sql\(|read_sql_query\(|load_dataset\(|tf\.data\.|spark\.read|"
        r"np\.load\([^)\n]*(data|train|test|valid|feature|sample|X_|y_)",
        "pii_step": r"presidio|scrubadub|anonymi[sz]|pseudonymi[sz]|redact|hashlib\.|sha256|blake2|hmac\.|"
        r"mask_pii|\.mask\(|_mask\(|mask_column|faker|Faker\(",
        # Managed model monitors: SageMaker Model Monitor and data capture, Vertex AI model
        # monitoring, the Azure ML data collector, BentoML's monitor.
        "model_monitor": r"DefaultModelMonitor|ModelQualityMonitor|ModelBiasMonitor|DataCaptureConfig|data_capture_config|"
        r"ModelDeploymentMonitoringJob|ModelMonitoringAlertConfig|model_monitoring|ModelMonitor\(|ModelDataCollector|"
        r"DataCollector\(|bentoml\.monitor\(|enable_app_insights|collect_model_data",
        # Traffic split, shadow and experiment assignment between model versions.
        "model_routing": r"ProductionVariant|production_variants|InitialVariantWeight|TargetVariant|traffic_split|"
        r"TrafficSplit|traffic_percentage|canary|Canary|shadow_model|ShadowModel|shadow_mode|champion|Champion|"
        r"challenger|Challenger|ab_test|ABTest|AbTest|abtest|a_b_test|experiment_group|assign_variant|variant_weight",
        "fallback": r"fallback|Fallback|FALLBACK|default_prediction|DEFAULT_PREDICTION|backup_model|secondary_model|"
        r"CircuitBreaker|circuit_breaker",
        "autoscaling_code": r"autoscaling_config|register_scalable_target|put_scaling_policy|max_replica_count|"
        r"HorizontalPodAutoscaler|max_replicas\s*=",
        # Feature store clients that no module group names: SageMaker, Vertex AI, Databricks, Feast objects.
        "feature_store_api": r"FeatureStore\(|Featurestore|FeatureOnlineStore|FeatureStoreClient\(|"
        r"FeatureEngineeringClient\(|FeatureGroup\(|get_online_features\(",
        # Model-server entry points: SageMaker and Lambda handlers, TorchServe, Triton Python and
        # Cog predictors, Azure ML online scoring scripts (``run(raw_data)``; ``run(mini_batch)`` is batch).
        "serving_handler": r"^[ \t]*def (model_fn|predict_fn|input_fn|lambda_handler)\(|^[ \t]*class TritonPythonModel\b|"
        r"^[ \t]*class \w+\(([\w.]+\.)?(BaseHandler|BasePredictor)\)|^def run\((raw_data|input_data|data)\b",
        "spot_instances": r"use_spot_instances\s*=\s*True|preemptible\s*=\s*True|spot\s*=\s*True|SPOT_INSTANCE",
        "request_batching": r"@serve\.batch|serve\.batch\(|batchable\s*=\s*True|dynamic_batching|max_batch_size\s*=",
        # A schedule on an orchestrated pipeline: Airflow, Prefect, Dagster, Kubeflow recurring runs.
        "scheduled_pipeline": r"schedule_interval\s*=|schedule\s*=\s*['\"](@|\*|\d)|CronSchedule\(|IntervalSchedule\(|"
        r"create_recurring_run|ScheduleDefinition\(|@schedule\(|cron\s*=\s*['\"]",
    }.items()
}

#: Top-level modules and the practice they show.
MODULE_GROUPS: Mapping[str, Mapping[str, str]] = {
    "framework": {
        "torch": "pytorch", "lightning": "pytorch-lightning", "pytorch_lightning": "pytorch-lightning",
        "tensorflow": "tensorflow", "keras": "keras", "sklearn": "scikit-learn", "xgboost": "xgboost",
        "lightgbm": "lightgbm", "catboost": "catboost", "jax": "jax", "flax": "jax", "transformers": "transformers",
        "statsmodels": "statsmodels", "onnxruntime": "onnx", "mxnet": "mxnet", "paddle": "paddlepaddle",
    },
    "tracker": {
        "mlflow": "mlflow", "wandb": "wandb", "neptune": "neptune", "tensorboard": "tensorboard",
        "tensorboardX": "tensorboard", "comet_ml": "comet", "aim": "aim", "clearml": "clearml",
        "dvclive": "dvclive", "sacred": "sacred", "guild": "guild", "polyaxon": "polyaxon",
        "torch.utils.tensorboard": "tensorboard", "trackio": "trackio", "swanlab": "swanlab",
    },
    "orchestrator": {
        "airflow": "airflow", "kfp": "kubeflow", "prefect": "prefect", "dagster": "dagster", "metaflow": "metaflow",
        "zenml": "zenml", "flytekit": "flyte", "luigi": "luigi", "kedro": "kedro", "tfx": "tfx",
        "sagemaker.workflow": "sagemaker-pipelines", "azure.ai.ml.dsl": "azure-ml-pipelines",
        "azureml.pipeline": "azure-ml-pipelines",
    },
    "tuning": {
        "optuna": "optuna", "hyperopt": "hyperopt", "keras_tuner": "keras-tuner", "kerastuner": "keras-tuner",
        "nevergrad": "nevergrad", "skopt": "scikit-optimize", "ax": "ax", "bayes_opt": "bayesian-optimization",
        "ray.tune": "ray-tune",
    },
    "feature_store": {
        "feast": "feast", "tecton": "tecton", "hopsworks": "hopsworks", "hsfs": "hopsworks",
        "featureform": "featureform", "databricks.feature_store": "databricks",
        "databricks.feature_engineering": "databricks", "sagemaker.feature_store": "sagemaker",
    },
    "serving_framework": {
        "fastapi": "fastapi", "flask": "flask", "bentoml": "bentoml", "ray.serve": "ray-serve",
        "tritonclient": "triton", "kserve": "kserve", "seldon_core": "seldon", "torchserve": "torchserve",
        "ts": "torchserve", "litserve": "litserve", "gradio": "gradio", "streamlit": "streamlit",
        "django": "django", "starlette": "starlette", "sanic": "sanic", "aiohttp": "aiohttp",
    },
    "monitoring": {
        "prometheus_client": "prometheus", "opentelemetry": "opentelemetry", "statsd": "statsd",
        "datadog": "datadog", "evidently": "evidently", "whylogs": "whylogs", "nannyml": "nannyml",
        "alibi_detect": "alibi-detect", "arize": "arize", "deepchecks": "deepchecks", "sentry_sdk": "sentry",
        "prometheus_fastapi_instrumentator": "prometheus", "starlette_exporter": "prometheus",
        "aioprometheus": "prometheus", "ddtrace": "datadog", "whylabs_client": "whylabs", "fiddler": "fiddler",
        "azureml.monitoring": "azure-ml", "azureml.ai.monitoring": "azure-ml",
    },
    "drift": {
        "evidently": "evidently", "whylogs": "whylogs", "nannyml": "nannyml", "alibi_detect": "alibi-detect",
        "deepchecks": "deepchecks", "arize": "arize", "frouros": "frouros",
    },
    "alerting": {"pagerduty": "pagerduty", "opsgenie_sdk": "opsgenie", "slack_sdk": "slack"},
    "llm_provider": {
        "openai": "openai", "anthropic": "anthropic", "cohere": "cohere", "mistralai": "mistral",
        "google.generativeai": "google", "vertexai": "google", "groq": "groq", "ollama": "ollama",
        "together": "together", "litellm": "litellm", "huggingface_hub": "huggingface",
        "langchain_openai": "openai", "langchain_anthropic": "anthropic", "langchain_google_genai": "google",
        "replicate": "replicate", "google.genai": "google", "langchain_google_vertexai": "google",
        "langchain_ollama": "ollama", "langchain_groq": "groq", "langchain_mistralai": "mistral",
        "langchain_cohere": "cohere", "langchain_aws": "bedrock", "langchain_fireworks": "fireworks",
        "langchain_together": "together", "fireworks": "fireworks", "llama_index.llms.openai": "openai",
        "llama_index.llms.anthropic": "anthropic", "llama_index.llms.ollama": "ollama",
    },
    "llm_framework": {
        "langchain": "langchain", "langchain_core": "langchain", "langchain_community": "langchain",
        "llama_index": "llama-index", "haystack": "haystack", "dspy": "dspy", "semantic_kernel": "semantic-kernel",
        "langgraph": "langgraph", "crewai": "crewai", "autogen": "autogen", "autogen_agentchat": "autogen",
        "pydantic_ai": "pydantic-ai", "smolagents": "smolagents", "instructor": "instructor",
    },
    "vector_store": {
        "chromadb": "chroma", "faiss": "faiss", "pinecone": "pinecone", "weaviate": "weaviate",
        "qdrant_client": "qdrant", "pymilvus": "milvus", "pgvector": "pgvector", "lancedb": "lancedb",
    },
    "guardrails": {
        "nemoguardrails": "nemo-guardrails", "guardrails": "guardrails-ai", "llm_guard": "llm-guard",
        "rebuff": "rebuff", "presidio_analyzer": "presidio", "presidio_anonymizer": "presidio", "lakera": "lakera",
        "lakera_chainguard": "lakera", "azure.ai.contentsafety": "azure-content-safety",
    },
    "llm_cost": {
        "langfuse": "langfuse", "langsmith": "langsmith", "helicone": "helicone", "tokencost": "tokencost",
        "traceloop": "openllmetry", "openlit": "openlit", "phoenix": "phoenix", "openinference": "phoenix",
        "promptlayer": "promptlayer", "agentops": "agentops", "lunary": "lunary",
    },
    "data_validation": {
        "pandera": "pandera", "great_expectations": "great-expectations", "tensorflow_data_validation": "tfdv",
        "deepchecks": "deepchecks", "pydantic": "pydantic",
    },
    "versioning": {"dvc": "dvc"},
    # ``ray.train`` rather than ``ray``: Ray is as often used for serving, tuning or data loading.
    "distributed": {"deepspeed": "deepspeed", "horovod": "horovod", "accelerate": "accelerate", "ray.train": "ray"},
    "feature_flags": {
        "ldclient": "launchdarkly", "UnleashClient": "unleash", "growthbook": "growthbook", "flagsmith": "flagsmith",
        "openfeature": "openfeature", "statsig": "statsig", "optimizely": "optimizely", "eppo_client": "eppo",
        "splitio": "split",
    },
    "circuit_breaker": {"pybreaker": "pybreaker", "circuitbreaker": "circuitbreaker", "aiobreaker": "aiobreaker"},
    "load_testing": {"locust": "locust", "molotov": "molotov"},
}


@dataclass(frozen=True, slots=True)
class FileSignals:
    """The signals found in the text of one Python file or notebook."""

    path: str
    modules: frozenset[str]
    signals: frozenset[str]
    #: Every imported module and each package above it: ``a.b.c`` gives ``a``, ``a.b`` and ``a.b.c``.
    packages: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        packages = set()
        for module in self.modules:
            parts = module.split(".")
            packages.update(".".join(parts[: index + 1]) for index in range(len(parts)))
        object.__setattr__(self, "packages", frozenset(packages))

    def imports(self, module: str) -> bool:
        """Tell whether the file imports ``module`` or a module inside it."""
        return module in self.packages


def imported_modules(text: str) -> frozenset[str]:
    """Return the dotted names of every absolute import in ``text``."""
    modules: set[str] = set()
    for match in _IMPORT_LINE.finditer(text):
        if match.group(1):
            modules.add(match.group(1))
            continue
        for part in match.group(2).split(","):
            name = part.strip().split()[0] if part.strip() else ""
            if name and not name.startswith("."):
                modules.add(name)
    return frozenset(modules)


def _anchors(pattern: str) -> tuple[str, ...] | None:
    """Return literal text that every match of ``pattern`` starts with, one per alternative.

    A substring test for these is far cheaper than a regular-expression search, and
    most signals are absent from most files. None when an alternative has no literal
    start of at least three characters.
    """
    alternatives, depth, current, in_class = [], 0, "", False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            current += pattern[index : index + 2]
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "|" and depth == 0 and not in_class:
            alternatives.append(current)
            current = ""
        else:
            current += char
        index += 1
    alternatives.append(current)
    anchors = []
    for alternative in alternatives:
        literal = ""
        index = 0
        while index < len(alternative):
            char = alternative[index]
            if char == "\\" and index + 1 < len(alternative) and not alternative[index + 1].isalnum():
                literal += alternative[index + 1]
                index += 2
                continue
            if char in ".^$*+?{}[]()|\\":
                break
            literal += char
            index += 1
        # A quantifier after the last literal character makes that character optional.
        if index < len(alternative) and alternative[index] in "*?{" and literal:
            literal = literal[:-1]
        if len(literal) < 3:
            return None
        anchors.append(literal)
    return tuple(anchors)


#: Literal text that every match contains, for the patterns whose alternatives do not start
#: with a literal (``\b``, ``^``, a group), so that :func:`_anchors` cannot find one.
_GIVEN_ANCHORS: dict[str, tuple[str, ...]] = {
    "lightning_trainer": ("Trainer",),
    "main_guard": ("__main__",),
    "lightning_logger": ("Logger(",),
    "gpu_usage": ("cuda", "gpu", "GPU", "device_map"),
    "serving_handler": ("_fn(", "lambda_handler(", "TritonPythonModel", "BaseHandler)", "BasePredictor)", "def run("),
    # The anchors found from the start of these patterns ("def", "class", "log") are in
    # almost every module; these are in every match too, and rarer.
    "input_guard": ("validate_", "check_", "moderate_", "screen_", "sanitize_", "sanitise_", "filter_", "guard_"),
    "output_guard": ("validate_", "check_", "moderate_", "screen_", "sanitize_", "sanitise_", "filter_", "guard_"),
    "guardrail_layer": ("Guardrail", "guardrail", "moderate_input", "moderate_output", "content_filter"),
    "prediction_logging": ("log.", "logger."),
}
_SIGNAL_ANCHORS = {name: _GIVEN_ANCHORS.get(name) or _anchors(pattern.pattern) for name, pattern in CODE_SIGNALS.items()}


def file_signals(path: str, text: str) -> FileSignals | None:
    """Read the signals of a Python file, or of a notebook's code cells; None for a notebook that is not valid JSON."""
    code = python_code(path, text)
    return None if code is None else read_signals(path, code)


def read_signals(path: str, text: str) -> FileSignals:
    found = frozenset(
        name
        for name, pattern in CODE_SIGNALS.items()
        if (anchors := _SIGNAL_ANCHORS[name]) is None or any(anchor in text for anchor in anchors)
        if pattern.search(text)
    )
    return FileSignals(path=path, modules=imported_modules(text), signals=found)


def group_members(signals: FileSignals, group: str) -> list[str]:
    """Return the labels of ``group`` that the file imports, in table order."""
    table = MODULE_GROUPS[group]
    return [label for module, label in table.items() if signals.imports(module)]
