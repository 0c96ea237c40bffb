"""Pipeline and evaluation rules: leakage through preprocessing, unscaled inputs, threshold-bound metrics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from pytest_aiml.engine.context import ModuleContext, PendingFinding, call_argument, keyword_value, literal_string
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority
from pytest_aiml.engine.walk import children

# -- AIML541 preprocessing-fitted-outside-pipeline ------------------------------------------

#: scikit-learn transformers whose fit learns statistics of the rows it is given: scalers,
#: imputers, vectorisers, decompositions and feature selectors. Label encoders and one-hot
#: encoders are left out, because fitting them on every row learns only the category names.
LEARNING_TRANSFORMERS = frozenset(
    {
        "StandardScaler", "MinMaxScaler", "RobustScaler", "MaxAbsScaler", "QuantileTransformer", "PowerTransformer",
        "KBinsDiscretizer", "SplineTransformer", "SimpleImputer", "KNNImputer", "IterativeImputer", "TfidfVectorizer",
        "CountVectorizer", "TfidfTransformer", "SelectKBest", "SelectPercentile", "SelectFpr", "SelectFdr",
        "SelectFwe", "GenericUnivariateSelect", "RFE", "RFECV", "SelectFromModel", "SequentialFeatureSelector",
        "PCA", "TruncatedSVD", "KernelPCA", "FastICA", "TargetEncoder", "ColumnTransformer",
        "make_column_transformer",
    }
)
#: Transformers that learn from the labels: fitted outside cross-validation they pick
#: features or encodings with the validation folds' labels, a leak that inflates scores badly.
SUPERVISED_TRANSFORMERS = frozenset(
    {
        "SelectKBest", "SelectPercentile", "SelectFpr", "SelectFdr", "SelectFwe", "GenericUnivariateSelect", "RFE",
        "RFECV", "SelectFromModel", "SequentialFeatureSelector", "TargetEncoder", "CatBoostEncoder", "WOEEncoder",
        "LeaveOneOutEncoder", "JamesSteinEncoder", "MEstimateEncoder",
    }
)
#: category_encoders encoders that learn from the target.
TARGET_ENCODERS = frozenset(
    {"TargetEncoder", "CatBoostEncoder", "WOEEncoder", "LeaveOneOutEncoder", "JamesSteinEncoder", "MEstimateEncoder"}
)
#: Functions that split rows into train and test parts: every positional argument is data.
SPLIT_FUNCTIONS = frozenset({"train_test_split"})
#: Cross-validation helpers, with their data as the second argument ``X``.
CV_FUNCTIONS = frozenset(
    {
        "cross_val_score", "cross_validate", "cross_val_predict", "learning_curve", "validation_curve",
        "permutation_test_score",
    }
)
SPLITTERS = frozenset(
    {
        "KFold", "StratifiedKFold", "GroupKFold", "StratifiedGroupKFold", "ShuffleSplit", "StratifiedShuffleSplit",
        "GroupShuffleSplit", "RepeatedKFold", "RepeatedStratifiedKFold", "LeaveOneOut", "LeavePOut",
        "LeaveOneGroupOut", "LeavePGroupsOut", "TimeSeriesSplit",
    }
)
SEARCHES = frozenset({"GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV"})


def learning_transformer(qualified: str | None) -> str | None:
    """Return the class name of a transformer that learns from its rows, or None."""
    if qualified is None:
        return None
    name = qualified.rsplit(".", 1)[-1]
    if qualified.startswith("sklearn.") and name in LEARNING_TRANSFORMERS:
        return name
    if qualified.startswith("category_encoders.") and name in TARGET_ENCODERS:
        return name
    return None


def sklearn_name(qualified: str | None) -> str | None:
    if qualified is None or not qualified.startswith("sklearn."):
        return None
    return qualified.rsplit(".", 1)[-1]


def root_name(expr: cst.BaseExpression) -> str | None:
    """Return the variable at the root of ``df[cols].values`` or ``X``, or None."""
    while True:
        if isinstance(expr, cst.Name):
            return expr.value
        if isinstance(expr, cst.Subscript):
            expr = expr.value
        elif isinstance(expr, cst.Attribute):
            expr = expr.value
        else:
            return None


def target_roots(target: cst.BaseExpression) -> Iterator[tuple[str, bool]]:
    """Yield each variable an assignment target binds, and whether it replaces the whole variable."""
    if isinstance(target, cst.Name):
        yield target.value, True
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from target_roots(element.value)
    elif isinstance(target, cst.StarredElement):
        yield from target_roots(target.value)
    elif isinstance(target, (cst.Subscript, cst.Attribute)):
        root = root_name(target)
        if root is not None:
            yield root, False


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Yield a node and every node below it, parents first."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current, whitespace=False)))


@dataclass(eq=False, slots=True)
class _Fit:
    """One fit of a transformer on rows that did not come out of a split."""

    transformer: str
    method: str
    data: str
    node: cst.Call
    statement: cst.CSTNode | None
    variable: str | None = None
    #: The fit's rows are, or are named as, the training part of an earlier split.
    training_part: bool = False
    #: The split that ran on the fitted rows, waiting for the transformer to be applied after it.
    split_after: str | None = None
    reported: bool = False


@dataclass(slots=True)
class _Scope:
    """Data-flow facts of one module or function body, in statement order."""

    #: Variable -> transformer class it was built as.
    transformers: dict[str, str] = field(default_factory=dict)
    #: Transformer variable -> its latest fit.
    fitted: dict[str, _Fit] = field(default_factory=dict)
    #: Raw data variable -> the fits that learned from it.
    fitted_on: dict[str, list[_Fit]] = field(default_factory=dict)
    #: Variable -> the fit whose output it holds.
    derived: dict[str, _Fit] = field(default_factory=dict)
    #: Variables that hold a part of a split: fitting on them is the right thing to do.
    split_parts: set[str] = field(default_factory=set)
    #: Variable -> splitter or search class it was built as.
    validators: dict[str, str] = field(default_factory=dict)


class PreprocessingFittedOutsidePipeline(FileRule):
    """Flag a transformer fitted on all rows whose output is then split or cross-validated."""

    code = "AIML541"
    slug = "preprocessing-fitted-outside-pipeline"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.LOW
    smells = ("Data Leakage",)
    message = "a transformer is fitted on every row before the data is split or cross-validated"
    impact = (
        "A scaler, imputer, vectoriser, decomposition or feature selector fitted before the split learns the "
        "means, vocabulary or selected features from the test rows too. The evaluation then measures a model "
        "that has seen its test data, and the score is optimistic; a feature selector fitted with the labels "
        "can make noise look predictive."
    )
    fix = (
        "Split first and fit the transformer on the training part only. Better, put it in a Pipeline with the "
        "model (make_pipeline(StandardScaler(), model), or a ColumnTransformer inside a Pipeline) and pass the "
        "whole pipeline to cross_val_score, GridSearchCV or fit, so that each fold refits it on its own training rows."
    )
    prefilter = ("fit(", "fit_transform(")
    applies_to_tests = False

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return ("sklearn" in text or "category_encoders" in text) and cls.matches_text(text)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._scopes: list[_Scope] = [_Scope()]
        #: Fit events by call node, so that a fit met inside another call's arguments is recorded once.
        self._fits: dict[cst.Call, _Fit | None] = {}

    # -- scopes --------------------------------------------------------------------------

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(_Scope())

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._scopes.pop()

    @property
    def _scope(self) -> _Scope:
        return self._scopes[-1]

    def _transformer_of(self, variable: str) -> str | None:
        for scope in (self._scope, self._scopes[0]):
            if variable in scope.transformers:
                return scope.transformers[variable]
        return None

    # -- fits and transforms ---------------------------------------------------------------

    def _fit_event(self, call: cst.Call) -> _Fit | None:
        """Return the fit this call makes (``t.fit(X)``, ``t.fit_transform(X)``), recording it once."""
        if call in self._fits:
            return self._fits[call]
        fit = self._new_fit(call)
        self._fits[call] = fit
        if fit is not None:
            scope = self._scope
            if fit.variable is not None:
                scope.fitted[fit.variable] = fit
            scope.fitted_on.setdefault(fit.data, []).append(fit)
        return fit

    def _new_fit(self, call: cst.Call) -> _Fit | None:
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in ("fit", "fit_transform"):
            return None
        receiver = func.value
        variable: str | None = None
        if isinstance(receiver, cst.Name):
            transformer = self._transformer_of(receiver.value)
            variable = receiver.value
        elif isinstance(receiver, cst.Call):
            transformer = learning_transformer(self.context.qualified_name(receiver.func))
        else:
            transformer = None
        if transformer is None:
            return None
        data = call_argument(call, 0, "X") or call_argument(call, 0, "raw_documents")
        root = root_name(data.value) if data is not None else None
        if root is None:
            return None
        training_part = root in self._scope.split_parts or "train" in root.lower()
        statement = self.context.statements[-1] if self.context.statements else None
        return _Fit(transformer, func.attr.value, root, call, statement, variable, training_part)

    def _output_of(self, call: cst.Call) -> _Fit | None:
        """Return the fit whose learned statistics the call's result carries."""
        func = call.func
        if not isinstance(func, cst.Attribute):
            return None
        if func.attr.value == "fit_transform":
            return self._fit_event(call)
        if func.attr.value != "transform":
            return None
        receiver = func.value
        if isinstance(receiver, cst.Name):
            for scope in (self._scope, self._scopes[0]):
                if receiver.value in scope.fitted:
                    return scope.fitted[receiver.value]
            return None
        if isinstance(receiver, cst.Call):
            return self._fit_event(receiver)
        return None

    def _taint(self, expr: cst.BaseExpression) -> _Fit | None:
        """Return the fit whose output flows into the expression, if any."""
        derived = self._scope.derived
        for node in walk(expr):
            if isinstance(node, cst.Name) and node.value in derived:
                return derived[node.value]
            if isinstance(node, cst.Call):
                fit = self._output_of(node)
                if fit is not None:
                    return fit
        return None

    # -- traversal ------------------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        fit = self._fit_event(node)
        if fit is None:
            applied = self._output_of(node)
            if applied is not None and applied.split_after is not None:
                self._report(applied, f"and {applied.split_after} then split those rows")
        self._check_sink(node)

    def leave_Assign(self, original_node: cst.Assign) -> None:
        value = original_node.value
        scope = self._scope
        qualified = self.context.qualified_name(value.func) if isinstance(value, cst.Call) else None
        built = learning_transformer(qualified)
        validator = sklearn_name(qualified)
        is_split = validator in SPLIT_FUNCTIONS
        fitted = self._fit_event(value) if isinstance(value, cst.Call) else None
        taint = None if is_split else self._taint(value)
        for target in original_node.targets:
            for variable, whole in target_roots(target.target):
                if not whole:
                    if taint is not None:
                        scope.derived[variable] = taint
                    continue
                scope.transformers.pop(variable, None)
                scope.validators.pop(variable, None)
                scope.split_parts.discard(variable)
                scope.derived.pop(variable, None)
                if built is not None:
                    scope.transformers[variable] = built
                elif fitted is not None and fitted.method == "fit":
                    # ``scaler = StandardScaler().fit(X)``: fit returns the transformer itself.
                    scope.transformers[variable] = fitted.transformer
                    scope.fitted[variable] = fitted
                elif validator in SPLITTERS or validator in SEARCHES:
                    scope.validators[variable] = validator
                elif is_split:
                    scope.split_parts.add(variable)
                elif taint is not None:
                    scope.derived[variable] = taint

    # -- sinks ----------------------------------------------------------------------------

    def _check_sink(self, node: cst.Call) -> None:
        qualified = self.context.qualified_name(node.func)
        name = sklearn_name(qualified)
        if name in SPLIT_FUNCTIONS:
            for arg in node.args:
                if arg.keyword is None and not arg.star:
                    self._split_of(arg.value, f"{name}()")
            return
        if name in CV_FUNCTIONS:
            data = call_argument(node, 1, "X")
            if data is not None:
                self._cross_validated(data.value, f"{name}()")
            return
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in ("split", "fit"):
            return
        validator = self._validator_of(func.value)
        if validator is None:
            return
        data = call_argument(node, 0, "X")
        if data is None:
            return
        if func.attr.value == "split" and validator in SPLITTERS:
            self._cross_validated(data.value, f"{validator}.split()")
        elif func.attr.value == "fit" and validator in SEARCHES:
            self._cross_validated(data.value, f"{validator}.fit()")

    def _validator_of(self, receiver: cst.BaseExpression) -> str | None:
        if isinstance(receiver, cst.Name):
            for scope in (self._scope, self._scopes[0]):
                if receiver.value in scope.validators:
                    return scope.validators[receiver.value]
            return None
        if isinstance(receiver, cst.Call):
            name = sklearn_name(self.context.qualified_name(receiver.func))
            return name if name in SPLITTERS or name in SEARCHES else None
        return None

    def _split_of(self, data: cst.BaseExpression, split: str) -> None:
        fit = self._taint(data)
        if fit is not None:
            self._report(fit, f"and its output is then split by {split}")
            return
        root = root_name(data)
        for fit in self._scope.fitted_on.get(root or "", ()):
            # The transformer counts once it is applied after the split: wait for that.
            if fit.split_after is None:
                fit.split_after = split

    def _cross_validated(self, data: cst.BaseExpression, validator: str) -> None:
        fit = self._taint(data)
        if fit is None:
            return
        # A scaler or vectoriser fitted on the training part and cross-validated on it leaks
        # little into the folds. That idiom is left alone unless the transformer used the labels.
        if fit.training_part and fit.transformer not in SUPERVISED_TRANSFORMERS:
            return
        self._report(fit, f"and its output is then cross-validated by {validator}")

    def _report(self, fit: _Fit, consequence: str) -> None:
        if fit.reported:
            return
        fit.reported = True
        message = (
            f"{fit.transformer}.{fit.method}() learns from all of {fit.data} {consequence}, so statistics of the "
            f"held-out rows leak into training; fit it inside a Pipeline or on the training split only"
        )
        self.context.pending.append(PendingFinding(self.code, fit.node, message, fit.statement))


PreprocessingFittedOutsidePipeline.INVALID = (
    Example(
        source=(
            "from sklearn.preprocessing import StandardScaler\nfrom sklearn.model_selection import train_test_split\n\n"
            "scaler = StandardScaler()\nX_scaled = scaler.fit_transform(X)\n"
            "X_train, X_test, y_train, y_test = train_test_split(X_scaled, y, random_state=0)\n"
        ),
        lines=(5,),
    ),
    Example(
        source=(
            "from sklearn.feature_selection import SelectKBest, f_classif\n"
            "from sklearn.model_selection import cross_val_score\nfrom sklearn.svm import SVC\n\n"
            "X_new = SelectKBest(f_classif, k=20).fit_transform(X, y)\n"
            "scores = cross_val_score(SVC(C=1.0), X_new, y, cv=5)\n"
        ),
        lines=(5,),
    ),
    # Fitted in place on a DataFrame, which is then split.
    Example(
        source=(
            "import pandas as pd\nfrom sklearn.impute import SimpleImputer\nfrom sklearn.model_selection import train_test_split\n\n"
            "df = pd.read_csv('data.csv')\nimputer = SimpleImputer(strategy='median')\n"
            "df[num_cols] = imputer.fit_transform(df[num_cols])\nX = df.drop(columns=['label'])\n"
            "X_tr, X_te, y_tr, y_te = train_test_split(X, df['label'], test_size=0.2, random_state=1)\n"
        ),
        lines=(7,),
    ),
    # Fitted before the split and applied to its parts.
    Example(
        source=(
            "from sklearn.preprocessing import MinMaxScaler\nfrom sklearn.model_selection import train_test_split\n\n"
            "def prepare(X, y):\n    scaler = MinMaxScaler().fit(X)\n"
            "    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0)\n"
            "    return scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te\n"
        ),
        lines=(5,),
    ),
    # A vectoriser fitted on every document, then a grid search on its output.
    Example(
        source=(
            "from sklearn.feature_extraction.text import TfidfVectorizer\nfrom sklearn.model_selection import GridSearchCV\n"
            "from sklearn.linear_model import LogisticRegression\n\ntfidf = TfidfVectorizer(min_df=2)\n"
            "features = tfidf.fit_transform(texts)\nsearch = GridSearchCV(LogisticRegression(), {'C': [1, 10]})\n"
            "search.fit(features, labels)\n"
        ),
        lines=(6,),
    ),
    Example(
        source=(
            "from sklearn.decomposition import PCA\nfrom sklearn.model_selection import KFold\n\n"
            "X_pca = PCA(n_components=10).fit_transform(X)\nfor train_idx, test_idx in KFold(5).split(X_pca):\n"
            "    model.fit(X_pca[train_idx], y[train_idx])\n"
        ),
        lines=(4,),
    ),
    # A feature selector picks features with the labels of the validation folds, even on the training part.
    Example(
        source=(
            "from sklearn.feature_selection import RFE\nfrom sklearn.model_selection import cross_val_score, train_test_split\n\n"
            "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
            "X_sel = RFE(estimator, n_features_to_select=10).fit_transform(X_train, y_train)\n"
            "print(cross_val_score(model, X_sel, y_train).mean())\n"
        ),
        lines=(5,),
    ),
)
PreprocessingFittedOutsidePipeline.VALID = (
    # Fitted on the training split only.
    Example(
        source=(
            "from sklearn.preprocessing import StandardScaler\nfrom sklearn.model_selection import train_test_split\n\n"
            "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\nscaler = StandardScaler()\n"
            "X_train = scaler.fit_transform(X_train)\nX_test = scaler.transform(X_test)\n"
        ),
    ),
    # The transformer lives in a pipeline that cross-validation refits per fold.
    Example(
        source=(
            "from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler\n"
            "from sklearn.model_selection import cross_val_score\nfrom sklearn.svm import SVC\n\n"
            "pipe = make_pipeline(StandardScaler(), SVC(C=1.0))\nscores = cross_val_score(pipe, X, y, cv=5)\n"
        ),
    ),
    # Encoding the labels learns only their names.
    Example(
        source=(
            "from sklearn.preprocessing import LabelEncoder\nfrom sklearn.model_selection import train_test_split\n\n"
            "y = LabelEncoder().fit_transform(labels)\nparts = train_test_split(X, y, random_state=0)\n"
        ),
    ),
    # Fitted on all rows for the final model, with no evaluation afterwards.
    Example(
        source=(
            "from sklearn.preprocessing import StandardScaler\n\nscaler = StandardScaler()\n"
            "X_all = scaler.fit_transform(X)\nmodel.fit(X_all, y)\n"
        ),
    ),
    # Fitted before a split but never applied afterwards.
    Example(
        source=(
            "from sklearn.preprocessing import StandardScaler\nfrom sklearn.model_selection import train_test_split\n\n"
            "StandardScaler().fit(X)\nparts = train_test_split(X, y, random_state=0)\n"
        ),
    ),
    # A split of other data than the fitted one.
    Example(
        source=(
            "from sklearn.preprocessing import StandardScaler\nfrom sklearn.model_selection import train_test_split\n\n"
            "scaler = StandardScaler()\nscaled_reference = scaler.fit_transform(reference)\n"
            "X_train, X_val = train_test_split(X, random_state=0)\n"
        ),
    ),
    # A variable reassigned from other data no longer carries the fit.
    Example(
        source=(
            "from sklearn.preprocessing import StandardScaler\nfrom sklearn.model_selection import cross_val_score\n\n"
            "X = StandardScaler().fit_transform(X)\nX = load_features()\nscores = cross_val_score(model, X, y)\n"
        ),
    ),
    # A scaler fitted on the training part and cross-validated there leaks little: that idiom is left alone.
    Example(
        source=(
            "from sklearn.preprocessing import StandardScaler\nfrom sklearn.model_selection import cross_val_score, train_test_split\n\n"
            "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
            "X_train_s = StandardScaler().fit_transform(X_train)\nprint(cross_val_score(model, X_train_s, y_train))\n"
        ),
    ),
    # Each function body is its own scope.
    Example(
        source=(
            "from sklearn.preprocessing import StandardScaler\nfrom sklearn.model_selection import train_test_split\n\n"
            "def features(X):\n    X = StandardScaler().fit_transform(X)\n    return X\n\n"
            "def split(X, y):\n    return train_test_split(X, y, random_state=0)\n"
        ),
    ),
    # A project class of the same name is not scikit-learn's.
    Example(
        source=(
            "from sklearn.model_selection import train_test_split\nfrom .scaling import StandardScaler\n\n"
            "X = StandardScaler().fit_transform(X)\nparts = train_test_split(X, y, random_state=0)\n"
        ),
    ),
)


# -- AIML542 scaling-sensitive-estimator-without-scaler -------------------------------------

#: Estimators whose result depends on the scale of each feature, and why.
SCALING_SENSITIVE: dict[str, str] = {
    "PCA": "its components follow the features with the largest variance",
    "KernelPCA": "its kernel compares raw distances",
    "SVC": "its kernel and margin compare raw distances",
    "SVR": "its kernel and margin compare raw distances",
    "NuSVC": "its kernel and margin compare raw distances",
    "NuSVR": "its kernel and margin compare raw distances",
    "LinearSVC": "its regularisation penalises each weight by the feature's scale",
    "LinearSVR": "its regularisation penalises each weight by the feature's scale",
    "SGDClassifier": "its gradient steps and penalty depend on each feature's scale",
    "SGDRegressor": "its gradient steps and penalty depend on each feature's scale",
    "MLPClassifier": "its gradient descent converges poorly on features of different scales",
    "MLPRegressor": "its gradient descent converges poorly on features of different scales",
    "KNeighborsClassifier": "its neighbours are found by raw distances",
    "KNeighborsRegressor": "its neighbours are found by raw distances",
    "RadiusNeighborsClassifier": "its neighbours are found by raw distances",
    "RadiusNeighborsRegressor": "its neighbours are found by raw distances",
}
#: scikit-learn classes and functions that scale features; text vectorisers return
#: normalised or count features, which these estimators take as they are.
SCALERS = frozenset(
    {
        "StandardScaler", "MinMaxScaler", "RobustScaler", "MaxAbsScaler", "Normalizer", "QuantileTransformer",
        "PowerTransformer", "scale", "minmax_scale", "robust_scale", "maxabs_scale", "normalize",
        "quantile_transform", "power_transform", "TfidfVectorizer", "TfidfTransformer", "HashingVectorizer",
        "CountVectorizer",
    }
)
#: Readers of tabular data, whose columns usually come in different units.
TABULAR_READERS = frozenset(
    {
        "pandas.read_csv", "pandas.read_parquet", "pandas.read_excel", "pandas.read_sql", "pandas.read_sql_query",
        "pandas.read_sql_table", "pandas.read_table", "pandas.read_json", "pandas.read_feather", "pandas.read_orc",
        "polars.read_csv", "polars.read_parquet", "sklearn.datasets.load_wine", "sklearn.datasets.load_breast_cancer",
        "sklearn.datasets.fetch_california_housing", "sklearn.datasets.fetch_covtype", "sklearn.datasets.fetch_kddcup99",
    }
)
#: Method calls whose result, put into arithmetic, scales by hand: ``(X - X.mean()) / X.std()``.
_STATISTICS = frozenset({"mean", "std", "min", "max", "var", "ptp", "norm", "quantile", "median"})


class ScalingSensitiveEstimatorWithoutScaler(FileRule):
    """Flag a scale-sensitive estimator trained on tabular data that the module never scales."""

    code = "AIML542"
    slug = "scaling-sensitive-estimator-without-scaler"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    smells = ("No Scaling Before Scaling-sensitive Operation",)
    message = "a scale-sensitive estimator is trained on features that are never scaled"
    impact = (
        "PCA, SVMs, SGD-trained linear models, neural networks and nearest neighbours treat a feature measured "
        "in thousands as far more important than one measured in fractions. Without scaling, the model is "
        "driven by units rather than by information, and it converges slowly or to a worse solution."
    )
    fix = (
        "Scale the features in the same pipeline as the estimator: make_pipeline(StandardScaler(), SVC()), or "
        "a ColumnTransformer that scales the numeric columns, so that the scaler is fitted on the training rows "
        "and applied again at prediction time."
    )
    prefilter = (
        "PCA", "SVC", "SVR", "SGDClassifier", "SGDRegressor", "MLPClassifier", "MLPRegressor", "Neighbors",
    )
    applies_to_tests = False

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return "sklearn" in text and cls.matches_text(text)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._scaled = False
        self._tabular = False
        self._candidates: list[tuple[cst.Call, cst.CSTNode | None, str]] = []

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.qualified_name(node.func)
        if qualified is None:
            return
        if qualified in TABULAR_READERS:
            self._tabular = True
            return
        name = sklearn_name(qualified)
        keras_normalization = qualified.endswith(".Normalization") and "keras" in qualified
        if name in SCALERS or keras_normalization:
            self._scaled = True
        elif name in SCALING_SENSITIVE:
            statement = self.context.statements[-1] if self.context.statements else None
            self._candidates.append((node, statement, name))

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if self._scaled or not isinstance(node.operator, (cst.Divide, cst.Subtract)):
            return
        for side in (node.left, node.right):
            for inner in walk(side):
                if (
                    isinstance(inner, cst.Call)
                    and isinstance(inner.func, cst.Attribute)
                    and inner.func.attr.value in _STATISTICS
                ):
                    self._scaled = True
                    return
        if isinstance(node.operator, cst.Divide) and isinstance(node.right, (cst.Integer, cst.Float)):
            # ``pixels / 255.0``: a fixed range brought to [0, 1].
            self._scaled = True

    def leave_Module(self, original_node: cst.Module) -> None:
        if self._scaled or not self._tabular:
            return
        for node, statement, name in self._candidates:
            message = (
                f"{name} is trained on tabular data that this module never scales, and {SCALING_SENSITIVE[name]}; "
                f"put a StandardScaler before it in a pipeline"
            )
            self.context.pending.append(PendingFinding(self.code, node, message, statement))


ScalingSensitiveEstimatorWithoutScaler.INVALID = (
    Example(
        source=(
            "import pandas as pd\nfrom sklearn.svm import SVC\n\ndf = pd.read_csv('patients.csv')\n"
            "model = SVC(C=10).fit(df[features], df['outcome'])\n"
        ),
        lines=(5,),
    ),
    Example(
        source=(
            "import pandas as pd\nfrom sklearn.decomposition import PCA\nfrom sklearn.neighbors import KNeighborsClassifier\n"
            "from sklearn.pipeline import make_pipeline\n\nhouses = pd.read_parquet('houses.parquet')\n"
            "pipe = make_pipeline(PCA(n_components=5), KNeighborsClassifier(n_neighbors=7))\n"
            "pipe.fit(houses[cols], houses['band'])\n"
        ),
        lines=(7,),
    ),
    Example(
        source=(
            "from sklearn.datasets import load_wine\nfrom sklearn.neural_network import MLPClassifier\n\n"
            "X, y = load_wine(return_X_y=True)\nclf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=500)\nclf.fit(X, y)\n"
        ),
        lines=(5,),
    ),
)
ScalingSensitiveEstimatorWithoutScaler.VALID = (
    Example(
        source=(
            "import pandas as pd\nfrom sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler\n"
            "from sklearn.svm import SVC\n\ndf = pd.read_csv('patients.csv')\n"
            "model = make_pipeline(StandardScaler(), SVC()).fit(df[features], df['outcome'])\n"
        ),
    ),
    # Scaled by hand.
    Example(
        source=(
            "import pandas as pd\nfrom sklearn.decomposition import PCA\n\ndf = pd.read_csv('data.csv')\n"
            "X = (df - df.mean()) / df.std()\ncomponents = PCA(n_components=2).fit_transform(X)\n"
        ),
    ),
    # Pixels brought to [0, 1].
    Example(
        source=(
            "import pandas as pd\nfrom sklearn.svm import SVC\n\ntrain = pd.read_csv('digits.csv')\n"
            "X = train.drop(columns='label').values / 255.0\nSVC().fit(X, train['label'])\n"
        ),
    ),
    # TF-IDF features are normalised already.
    Example(
        source=(
            "import pandas as pd\nfrom sklearn.feature_extraction.text import TfidfVectorizer\nfrom sklearn.svm import LinearSVC\n\n"
            "reviews = pd.read_csv('reviews.csv')\nX = TfidfVectorizer().fit_transform(reviews['text'])\n"
            "LinearSVC().fit(X, reviews['label'])\n"
        ),
    ),
    # Data of unknown origin (embeddings from a model, say): silence.
    Example(
        source="from sklearn.decomposition import PCA\n\npoints = PCA(n_components=2).fit_transform(embeddings)\n",
    ),
    # Scale-free estimators.
    Example(
        source=(
            "import pandas as pd\nfrom sklearn.ensemble import RandomForestClassifier\n\ndf = pd.read_csv('x.csv')\n"
            "RandomForestClassifier(n_estimators=200).fit(df[cols], df['y'])\n"
        ),
    ),
)


# -- AIML543 threshold-dependent-metrics-only ------------------------------------------------

#: Metrics computed from hard labels, at one decision threshold.
THRESHOLD_METRICS = frozenset(
    {
        "f1_score", "precision_score", "recall_score", "fbeta_score", "accuracy_score", "balanced_accuracy_score",
        "confusion_matrix", "classification_report", "jaccard_score", "matthews_corrcoef",
    }
)
#: Metrics whose default ``average="binary"`` accepts only binary targets: their use marks a binary classifier.
BINARY_DEFAULT_METRICS = frozenset({"f1_score", "precision_score", "recall_score", "fbeta_score", "jaccard_score"})
#: Word parts of threshold-free metrics, found in names and strings (``scoring="roc_auc"``, ``metrics=["AUC"]``,
#: ``BinaryAUROC``, ``average_precision_score``).
THRESHOLD_FREE_PARTS = ("auc", "roc", "average_precision", "log_loss", "logloss", "brier", "precision_recall_curve", "det_curve")


class ThresholdDependentMetricsOnly(FileRule):
    """Flag a binary classifier evaluated only with metrics taken at one threshold."""

    code = "AIML543"
    slug = "threshold-dependent-metrics-only"
    category = Category.TRAINING
    priority = Priority.LOW
    effort = Effort.LOW
    smells = ("Threshold-Dependent Validation",)
    message = "a binary classifier is evaluated only with threshold-dependent metrics"
    impact = (
        "Accuracy, precision, recall and F1 measure the model at one decision threshold, usually 0.5, which is "
        "rarely the one used in production and which moves with class balance. A model can look worse or better "
        "only because of where the threshold sits, and comparisons between models become unreliable."
    )
    fix = (
        "Add a threshold-independent metric computed from scores or probabilities: roc_auc_score, "
        "average_precision_score (or the precision-recall curve) for ranking quality, log_loss or "
        "brier_score_loss for calibration; then choose the operating threshold explicitly."
    )
    prefilter = ("_score", "confusion_matrix", "classification_report", "matthews_corrcoef")
    applies_to_tests = False

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return "sklearn" in text and cls.matches_text(text)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._threshold_free = False
        self._binary = False
        self._used: list[str] = []
        self._anchor: tuple[cst.Call, cst.CSTNode | None] | None = None

    def visit_Name(self, node: cst.Name) -> None:
        if not self._threshold_free:
            lowered = node.value.lower()
            self._threshold_free = any(part in lowered for part in THRESHOLD_FREE_PARTS)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if not self._threshold_free:
            value = literal_string(node)
            if value is not None and len(value) < 40:
                lowered = value.lower()
                self._threshold_free = any(part in lowered for part in THRESHOLD_FREE_PARTS)

    def visit_Call(self, node: cst.Call) -> None:
        name = sklearn_name(self.context.qualified_name(node.func))
        if name not in THRESHOLD_METRICS:
            return
        if name not in self._used:
            self._used.append(name)
        if name in BINARY_DEFAULT_METRICS:
            average = keyword_value(node, "average")
            text = literal_string(average) if average is not None else "binary"
            if text == "binary" or keyword_value(node, "pos_label") is not None:
                self._binary = True
                if self._anchor is None:
                    statement = self.context.statements[-1] if self.context.statements else None
                    self._anchor = (node, statement)

    def leave_Module(self, original_node: cst.Module) -> None:
        if self._threshold_free or not self._binary or self._anchor is None:
            return
        node, statement = self._anchor
        message = (
            f"this binary classifier is scored only with threshold-dependent metrics ({', '.join(self._used)}); "
            "add roc_auc_score or average_precision_score computed from predicted probabilities"
        )
        self.context.pending.append(PendingFinding(self.code, node, message, statement))


ThresholdDependentMetricsOnly.INVALID = (
    Example(
        source=(
            "from sklearn.metrics import accuracy_score, f1_score\n\npred = model.predict(X_test)\n"
            "print(accuracy_score(y_test, pred))\nprint(f1_score(y_test, pred))\n"
        ),
        lines=(5,),
    ),
    Example(
        source=(
            "from sklearn import metrics\n\ndef evaluate(model, X, y):\n    pred = model.predict(X)\n"
            "    return {'precision': metrics.precision_score(y, pred, pos_label='spam'),\n"
            "            'recall': metrics.recall_score(y, pred, pos_label='spam')}\n"
        ),
        path="evaluate.py",
        lines=(5,),
    ),
)
ThresholdDependentMetricsOnly.VALID = (
    Example(
        source=(
            "from sklearn.metrics import f1_score, roc_auc_score\n\nprint(f1_score(y, model.predict(X)))\n"
            "print(roc_auc_score(y, model.predict_proba(X)[:, 1]))\n"
        ),
    ),
    # A scoring string names a threshold-free metric.
    Example(
        source=(
            "from sklearn.metrics import f1_score\nfrom sklearn.model_selection import cross_val_score\n\n"
            "auc = cross_val_score(model, X, y, scoring='roc_auc')\nprint(f1_score(y_test, pred))\n"
        ),
    ),
    # A multiclass average does not mark a binary classifier.
    Example(
        source=(
            "from sklearn.metrics import accuracy_score, f1_score\n\nprint(accuracy_score(y, pred))\n"
            "print(f1_score(y, pred, average='macro'))\n"
        ),
    ),
    # Accuracy alone does not tell whether the task is binary.
    Example(source="from sklearn.metrics import accuracy_score\n\nprint(accuracy_score(y_test, pred))\n"),
    Example(
        source=(
            "from sklearn.metrics import f1_score, average_precision_score\n\n"
            "ap = average_precision_score(y, scores)\nf1 = f1_score(y, scores > 0.3)\n"
        ),
    ),
    # A project function of the same name.
    Example(source="from .metrics import f1_score\n\nprint(f1_score(y, pred))\n"),
)


RULES = (PreprocessingFittedOutsidePipeline, ScalingSensitiveEstimatorWithoutScaler, ThresholdDependentMetricsOnly)
