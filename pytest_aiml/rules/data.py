"""Data rules: personal data committed with the repository, and data loaded without validation."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from pytest_aiml.engine.discovery import is_test_path
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.inventory import Inventory
from pytest_aiml.engine.pii import PiiColumn, bytes_read, data_format, scan_data_file
from pytest_aiml.engine.rule import Category, Effort, Example, Priority, RepoRule, Scope

log = logging.getLogger("pytest_aiml.rules.data")

# -- AIML601 pii-in-data -----------------------------------------------------------------

#: Modules whose import in code that names a data file shows a PII step for the whole
#: file: an anonymiser (Presidio, scrubadub), or a generator of synthetic records (Faker).
PII_LIBRARIES = ("presidio_analyzer", "presidio_anonymizer", "scrubadub", "faker")


class PiiInData(RepoRule):
    """Flag committed data files whose columns hold personal data that no code handles."""

    code = "AIML601"
    slug = "pii-in-data"
    category = Category.SECURITY
    priority = Priority.CRITICAL
    scope = Scope.DATA
    effort = Effort.MEDIUM
    anti_pattern = "PII in training data without handling"
    message = "a committed data file contains personal data (PII) that no code anonymises"
    impact = (
        "Personal data in a repository is copied to every clone, CI runner and model trained on it; "
        "models memorise and leak it, and keeping it without a legal basis breaks GDPR and CCPA."
    )
    fix = (
        "Remove the personal columns from the committed file, or replace them with pseudonyms: hash them "
        "with a keyed hash (hmac), mask them, or run Presidio or scrubadub over the data in the code that "
        "reads the file. For synthetic data, generate it with Faker in the repository. If the data is "
        "public or consented, waive the file in [tool.pytest-aiml] with the reason."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        handlers = _PiiHandlers(inventory)
        for path in inventory.data_files:
            fmt = data_format(path)
            if fmt is None:
                log.debug("not scanning %s for PII: its format is not read", path)
                continue
            inventory.repo.note_read(path, head=bytes_read(fmt))
            columns = scan_data_file(inventory.repo.root / path, fmt)
            if not columns or handlers.handle(path, columns):
                continue
            for column in columns:
                yield Finding(
                    code=self.code, path=path, line=column.first_line, column=1 if column.first_line else 0,
                    message=_describe(column),
                )


def _describe(column: PiiColumn) -> str:
    """Name the column, the kind and where it first appears; the value shown is always masked."""
    where = f"row {column.first_row}"
    if column.first_line:
        where += f" (line {column.first_line})"
    if column.column is None:
        return (
            f"{column.kind.plural} on {column.hits} of {column.values} sampled lines, first at line "
            f"{column.first_line}: {column.masked}"
        )
    return (
        f"column '{column.column}' contains {column.kind.plural} ({column.hits} of {column.values} sampled rows), "
        f"first at {where}: {column.masked}"
    )


class _PiiHandlers:
    """The modules that could handle a data file's personal data, read once per run."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.candidates = [
            signals for signals in inventory.code
            if not is_test_path(signals.path)
            and ("pii_step" in signals.signals or any(signals.imports(module) for module in PII_LIBRARIES))
        ]
        self._texts: dict[str, str] = {}

    def handle(self, path: str, columns: list[PiiColumn]) -> bool:
        """Tell whether code that names the file anonymises it, or hashes or masks every flagged column."""
        name = PurePosixPath(path).name
        for signals in self.candidates:
            text = self._text(signals.path)
            if name not in text:
                continue
            if any(signals.imports(module) for module in PII_LIBRARIES):
                log.debug("%s: PII handled by a library in %s", path, signals.path)
                return True
            named = [column.column for column in columns if column.column is not None]
            if named and all(re.search(rf"""['"]{re.escape(column)}['"]""", text) for column in named):
                log.debug("%s: PII columns hashed or masked in %s", path, signals.path)
                return True
        return False

    def _text(self, path: str) -> str:
        if path not in self._texts:
            self._texts[path] = self.inventory.repo.read_text(path) or ""
        return self._texts[path]


_CUSTOMERS = (
    "id,name,email,signup\n"
    "1,Ann,ann.lee@gmail.com,2023-01-02\n"
    "2,Bo,bo.chan@yahoo.co.uk,2023-01-05\n"
    "3,Cy,cy.d@outlook.com,2023-02-11\n"
)
_PAYMENTS = (
    "order,amount,card_number\n"
    "17,12.50,4242 4242 4242 4242\n"
    "18,99.00,5555 5555 5555 4444\n"
)
_READS_CUSTOMERS = "import pandas as pd\n\ndf = pd.read_csv('data/customers.csv')\n"

PiiInData.VALID = (
    # Documentation domains (RFC 2606) identify no person.
    Example(files={"data/users.csv": "id,email\n1,a@example.com\n2,b@example.org\n3,c@test.example.net\n"}),
    # A float column never looks like card numbers, and ids, timestamps and hashes match no kind.
    Example(
        files={
            "data/features.csv": (
                "user_id,ts_ms,score,sha\n"
                "4242424242424242,1617181920123,0.4242424242424242,e3b0c44298fc1c149afbf4c8996fb92427ae41e4\n"
                "4111111111111112,1617181920456,0.5555555555554444,da39a3ee5e6b4b0d3255bfef95601890afd80709\n"
                "5105105105105101,1617181920789,0.3782822463100050,a9993e364706816aba3e25717850c26c9cd0d89d\n"
            ),
        }
    ),
    # Version strings are not IP addresses, and private addresses identify no person.
    Example(
        files={
            "data/builds.csv": "package,version,host\nnumpy,1.2.3.4,10.0.0.7\ntorch,2.1.0.1,192.168.1.20\nonnx,3.4.5.6,172.16.0.3\n",
        }
    ),
    # One address in a free-text column that is neither named nor mostly e-mail is not enough.
    Example(
        files={
            "data/reviews.csv": (
                "review,stars\n"
                "great product,5\n"
                "broke after a week,1\n"
                "write to support.team@acme-shop.com for returns,3\n"
                "fine,4\n"
            ),
        }
    ),
    # Bare digit runs are not phone numbers.
    Example(files={"data/events.csv": "event,code\nclick,4155552671\nview,2025550143\nbuy,3125550199\n"}),
    # A file that code anonymises with Presidio.
    Example(
        files={
            "data/customers.csv": _CUSTOMERS,
            "prep/anonymize.py": "from presidio_anonymizer import AnonymizerEngine\n" + _READS_CUSTOMERS,
        }
    ),
    # The flagged columns are hashed in code that reads the file.
    Example(
        files={
            "data/customers.csv": _CUSTOMERS,
            "prep/pseudonymize.py": _READS_CUSTOMERS + "import hashlib\n"
            "df['email'] = df['email'].map(lambda v: hashlib.sha256(v.encode()).hexdigest())\n",
        }
    ),
    # Synthetic records written by Faker.
    Example(
        files={
            "data/customers.csv": _CUSTOMERS,
            "scripts/make_customers.py": "from faker import Faker\nfake = Faker()\nopen('data/customers.csv', 'w')\n",
        }
    ),
    # Test fixtures are not training data.
    Example(files={"tests/data/customers.csv": _CUSTOMERS}),
    # A JSON configuration is a single object, not records.
    Example(files={"package.json": '{"name": "ui", "author": {"name": "Ann", "email": "ann.lee@gmail.com"}}\n'}),
    # Project files are not data.
    Example(files={"LICENSE.txt": "Copyright Ann Lee <ann.lee@gmail.com>\nbob.ray@gmail.com\n"}),
    # Masked values are already handled.
    Example(files={"data/customers.csv": "id,email,card\n1,a***@g***.com,**** **** **** 4242\n2,b***@y***.com,**** **** **** 4444\n"}),
    # Luhn-invalid numbers and unknown issuer prefixes are not card numbers.
    Example(files={"data/orders.csv": "order,card_number\n1,4242 4242 4242 4241\n2,9999 9999 9999 9995\n"}),
)
PiiInData.INVALID = (
    Example(files={"data/customers.csv": _CUSTOMERS}, lines=(2,)),
    Example(files={"data/payments.csv": _PAYMENTS}, lines=(2,)),
    # A header hint is enough for one validated value.
    Example(files={"data/people.tsv": "name\tssn\tnote\nAnn\t123-45-6789\tok\nBo\t\tmissing\n"}, lines=(2,)),
    Example(
        files={
            "data/chats.jsonl": (
                '{"user": {"phone": "+44 20 7946 0958"}, "text": "hi"}\n'
                '{"user": {"phone": "+1 415-555-2671"}, "text": "call me"}\n'
            ),
        },
        lines=(1,),
    ),
    # A JSON array has no line numbers: the finding names the record.
    Example(
        files={
            "data/accounts.json": (
                '{"accounts": [{"iban": "GB82 WEST 1234 5698 7654 32", "nino": "AB 12 34 56 C"},'
                ' {"iban": "DE89370400440532013000", "nino": "CE 65 43 21 A"}]}'
            ),
        }
    ),
    Example(files={"data/access.csv": "when,client_ip\n2024-01-01,8.8.8.8\n2024-01-02,1.1.1.1\n"}, lines=(2,)),
    # Code that reads the file but hashes another column leaves the e-mails exposed.
    Example(
        files={
            "data/customers.csv": _CUSTOMERS,
            "prep/clean.py": _READS_CUSTOMERS + "import hashlib\ndf['name'] = df['name'].map(hash)\n",
        },
        lines=(2,),
    ),
    # A text file of addresses, one per line.
    Example(files={"data/raw/mailing_list": "ann.lee@gmail.com\nbo.chan@yahoo.co.uk\ncy.d@outlook.com\n"}, lines=(1,)),
)


# -- AIML602 no-data-validation ----------------------------------------------------------

#: Packages whose presence in the dependency files counts as data validation. Evidently
#: is left out: it is mostly installed for drift reports, and only its test suites
#: (found in the code) validate data.
VALIDATION_PACKAGES = frozenset(
    {
        "pandera", "great-expectations", "great_expectations", "tensorflow-data-validation", "deepchecks",
        "pointblank", "soda-core", "soda-core-pandas", "soda-core-spark-df", "soda-core-duckdb", "frictionless",
        "whylogs",
    }
)
#: Files that hold a data schema or suite of expectations.
_SCHEMA_FILE = re.compile(
    r"(^|/)(great_expectations\.ya?ml|expectations/[^/]+\.json|schema\.pbtxt|[\w-]*\.schema\.json|"
    r"checks?[\w-]*\.ya?ml)$"
)
#: Module paths where pydantic models describe data records rather than API requests.
_SCHEMA_MODULE = re.compile(r"(^|/)(schemas?|validation|validators?|contracts?|records?)[\w-]*(\.py|/)")
_SHOWN_FILES = 5


class NoDataValidation(RepoRule):
    """Flag a repository that loads training or serving data and validates it nowhere."""

    code = "AIML602"
    slug = "no-data-validation"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.MEDIUM
    anti_pattern = "Missing data validation"
    message = "data is loaded for training or serving but validated nowhere"
    impact = (
        "Without a schema or expectations, a renamed column, a new category, a unit change or a batch of "
        "nulls flows straight into training or predictions, and the model degrades without an error."
    )
    fix = (
        "Check every dataset where it is loaded: a pandera DataFrameSchema, a Great Expectations suite, "
        "TFDV statistics against a schema, Deepchecks or Evidently test suites, pointblank or Soda checks, "
        "or pydantic models for record data; fail the pipeline when the check fails."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        if not (inventory.labels("framework") or inventory.training_files):
            return
        loaders = [
            path for path in inventory.files_with("data_loading")
            if path.endswith(".py")
        ]
        if not loaders or _validates_data(inventory, loaders):
            return
        shown = ", ".join(loaders[:_SHOWN_FILES])
        more = len(loaders) - _SHOWN_FILES
        if more > 0:
            shown += f" and {more} more"
        count = "1 module" if len(loaders) == 1 else f"{len(loaders)} modules"
        yield Finding(
            code=self.code,
            path=loaders[0],
            message=(
                f"data is loaded in {count} ({shown}) and no data validation (pandera, Great Expectations, "
                "TFDV, Deepchecks, Evidently tests, pointblank, Soda, pydantic record models) or schema "
                "is used anywhere in the repository"
            ),
        )


def _validates_data(inventory: Inventory, loaders: list[str]) -> bool:
    """Tell whether the repository validates data anywhere: in code, tests, schema files or dependencies."""
    if inventory.files_with("validation_library", tests=True) or inventory.files_with("data_validation", tests=True):
        return True
    loader_set = set(loaders)
    for signals in inventory.code:
        if signals.imports("pydantic") and (signals.path in loader_set or _SCHEMA_MODULE.search(signals.path)):
            return True
    if any(_SCHEMA_FILE.search(path) for path in inventory.repo.paths):
        return True
    return any(package in inventory.pins for package in VALIDATION_PACKAGES)


_LOADS_CSV = "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n\ndf = pd.read_csv('data/train.csv')\n" \
    "model = LogisticRegression().fit(df[['x']], df['y'])\n"

NoDataValidation.VALID = (
    Example(
        files={
            "train.py": _LOADS_CSV,
            "schemas.py": "import pandera as pa\nschema = pa.DataFrameSchema({'x': pa.Column(float)})\n",
        }
    ),
    Example(files={"train.py": _LOADS_CSV, "requirements.txt": "pandas\ngreat-expectations==0.18.8\n"}),
    Example(
        files={
            "train.py": _LOADS_CSV,
            "gx/great_expectations.yml": "config_version: 3.0\n",
        }
    ),
    Example(
        files={
            "pipeline/load.py": "import pandas as pd\nimport torch\nfrom pipeline.records import Record\n"
            "rows = [Record.model_validate(r) for r in pd.read_json('data/x.jsonl', lines=True).to_dict('records')]\n",
            "pipeline/records.py": "from pydantic import BaseModel\n\nclass Record(BaseModel):\n    x: float\n",
        }
    ),
    Example(
        files={
            "train.py": _LOADS_CSV,
            "tests/test_data.py": "import pandera as pa\n",
        }
    ),
    # Pandas without any ML framework is analysis, not a model's data.
    Example(files={"report.py": "import pandas as pd\ndf = pd.read_csv('sales.csv')\nprint(df.describe())\n"}),
    # Only notebooks load data: exploration, not a pipeline.
    Example(
        files={
            "explore.ipynb": '{"cells": [{"cell_type": "code", "source": ["import pandas as pd\\n", "import torch\\n",'
            ' "df = pd.read_csv(\'d.csv\')\\n"], "metadata": {}, "outputs": [], "execution_count": null}],'
            ' "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
        }
    ),
    Example(
        files={
            "train.py": "import tensorflow_data_validation as tfdv\nimport tensorflow as tf\n"
            "ds = tf.data.TFRecordDataset(files)\nstats = tfdv.generate_statistics_from_csv('train.csv')\n",
        }
    ),
)
NoDataValidation.INVALID = (
    Example(files={"train.py": _LOADS_CSV}),
    Example(
        files={
            "src/data.py": "from datasets import load_dataset\nds = load_dataset('imdb')\n",
            "src/train.py": "import torch\nloss.backward()\noptimizer.step()\n",
            # pydantic models of API requests do not validate the training records.
            "src/api.py": "from fastapi import FastAPI\nfrom pydantic import BaseModel\n\nclass Request(BaseModel):\n    text: str\n",
        }
    ),
    Example(
        files={
            "jobs/features.py": "from pyspark.sql import SparkSession\nimport xgboost\n"
            "df = spark.read.parquet('s3://bucket/features')\n",
        }
    ),
)

RULES = (PiiInData, NoDataValidation)
