"""The state of one ``pytest --aiml`` run, registered as a plugin object.

Everything here loads only when ``--aiml`` is given. The object owns the settings,
the rule registry, the repository listing and the per-file analyses, and implements
the collection, reporting and session-end hooks.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import gc
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from pytest_aiml import xdist_support
from pytest_aiml.collect import (
    ARTIFACT_PROPERTY,
    RESULT_PROPERTY,
    AimlFile,
    AimlItem,
    AimlRepository,
    ArtifactFile,
    NotImported,
    RuleItem,
)
from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.dependencies import collect_pins
from pytest_aiml.engine.discovery import FileKind, RepoFiles, discover
from pytest_aiml.engine.errors import ConfigError
from pytest_aiml.engine.inventory import Inventory, build_inventory
from pytest_aiml.engine.baseline import Baseline, write_baseline
from pytest_aiml.engine.findings import Finding, ParseFailure
from pytest_aiml.engine.registry import RuleRegistry, builtin_rules
from pytest_aiml.engine.repository import RepositoryCache, RepositoryResults, repository_salt, run_repository_rules
from pytest_aiml.engine.rule import FileRule, RepoRule, Rule
from pytest_aiml.engine.waivers import InlineWaiverError, Waiver, config_waivers, inline_waivers
from pytest_aiml.outcomes import Verdict, settle
from pytest_aiml.report.summary import RunSummary, summarize
from pytest_aiml.engine.cache import AnalysisCache, SignalsCache, analysis_salt, signals_salt
from pytest_aiml.engine.parallel import FileScan, ScanSettings, default_workers, scan_in_pool, start_in_background
from pytest_aiml.engine.runner import (
    FileAnalysis,
    FilePlan,
    RuleTimes,
    analyze_text,
    NotAnalysed,
    UnreadSource,
    read_source,
    screen,
)
from pytest_aiml.declared import PREPROCESSING_PROPERTY, SERVING_PROPERTY, DeclaredFile
from pytest_aiml.engine.discovery import glob_matches
from pytest_aiml.settings import Settings, load_declarations, load_settings

log = logging.getLogger("pytest_aiml")

#: File kinds whose content the file rules read.
SOURCE_KINDS = (FileKind.PYTHON, FileKind.NOTEBOOK)
#: Fewer uncached files than this are analysed as their items run, not in a process pool.
PRESCAN_MIN_FILES = 24
#: Options whose value is a path, which must be written ``--option=PATH``.
PATH_OPTIONS = ("--aiml-report", "--aiml-baseline", "--aiml-sarif")
#: Suffixes of files that are sniffed for model content although their name does not say so.
CONTENT_SNIFFED_SUFFIXES = frozenset({"", ".dat", ".data", ".weights", ".params", ".state", ".model"})


class AimlSession:
    """One run of pytest-aiml inside one pytest process (controller or xdist worker)."""

    def __init__(self, config: pytest.Config, settings: Settings, registry: RuleRegistry) -> None:
        self.config = config
        self.settings = settings
        self.registry = registry
        self.scope = xdist_support.decide_scope(config)
        self.results: list[dict[str, Any]] = []
        self.outcomes: dict[str, str] = {}
        self._analyses: dict[str, FileAnalysis] = {}
        self._sources: dict[str, tuple[bytes, str] | None] = {}
        #: Source files that exist but are not analysed, with the reason (engine.runner.UnreadSource).
        self._unread: dict[str, NotAnalysed] = {}
        self._rules_by_file: dict[str, list[type[FileRule]]] = {}
        #: Files CPython cannot parse, found while screening them (``runner.screen``).
        self._syntax_failures: dict[str, ParseFailure] = {}
        self._file_waivers: dict[str, list[Waiver]] = {}
        #: Under pytest-xdist, the files this worker took from another worker's scan.
        self._files_from_other_worker = 0
        #: Set when the run was interrupted (collection errors, Ctrl-C): the results are partial.
        self.interrupted = False
        #: Set when collecting a scanned file failed, for example on an invalid inline waiver.
        self.collection_failed = False
        #: Set when --aiml-baseline-update was not written because the run was partial.
        self.baseline_refused = False
        #: Files named on the command line under --aiml-only, collected by pytest itself.
        self._named_files: set[str] = set()
        self.all_rules = registry
        self.config_waivers: list[Waiver] = []
        self.baseline_counts: dict[str, int] = {}
        self.today = dt.date.today()
        self._inspections: dict[str, Any] = {}
        self._artifact_context: Any = None
        #: Inspections reported by artifact items, by path, for the report's inventory.
        self.artifact_results: dict[str, dict[str, Any]] = {}
        self.preprocessing_specs: tuple[Any, ...] = ()
        self.declared_models: tuple[Any, ...] = ()
        self._functions: dict[str, Any] = {}
        #: Measurements of the declared checks, for the report.
        self.preprocessing_results: list[dict[str, Any]] = []
        self.serving_results: list[dict[str, Any]] = []
        #: What --aiml-fix or --aiml-diff changed, once the controller ran the fix step.
        self.fix_report: Any = None
        #: Waits for the repository rules' results when a process of their own checks them.
        self._background_repository: Callable[[], RepositoryResults] | None = None

    @classmethod
    def start(cls, config: pytest.Config) -> AimlSession:
        rootdir = Path(str(config.rootpath)).resolve()
        invocation = Path(config.invocation_params.dir)
        for option in PATH_OPTIONS:
            if option in config.invocation_params.args:
                # pytest picks the rootdir before plugin options are known, so it takes the
                # separate PATH for a test path and may pick the wrong rootdir.
                raise pytest.UsageError(
                    f"pytest-aiml: write {option}=PATH with '=': pytest chooses the rootdir before it knows "
                    f"plugin options, so a separate PATH after {option} is taken for a path to test"
                )
        _check_fix_options(config)
        # A path on the command line is relative to where pytest started; one in the ini
        # file is relative to the rootdir, like the other paths of the configuration.
        report_path = None
        if config.getoption("aiml_report"):
            report_path = (invocation / config.getoption("aiml_report")).resolve()
        elif config.getini("aiml_report"):
            report_path = (rootdir / config.getini("aiml_report")).resolve()
        baseline = config.getoption("aiml_baseline")
        try:
            settings = load_settings(
                rootdir,
                cli_select=config.getoption("aiml_select"),
                cli_ignore=config.getoption("aiml_ignore"),
                report_path=report_path,
                cli_fail_on=config.getoption("aiml_fail_on"),
                baseline_path=(invocation / baseline).resolve() if baseline else None,
                baseline_update=config.getoption("aiml_baseline_update"),
                strict_waivers=config.getini("aiml_strict_waivers"),
            )
            every_rule = builtin_rules()
            config.pluginmanager.hook.pytest_aiml_register_rules(registry=every_rule)
            for source, selector in settings.selectors():
                if not every_rule.matching(selector):
                    raise ConfigError(source, f"names unknown rule code {selector!r}", f"known codes: {', '.join(every_rule.codes())}")
            waivers = config_waivers(settings.table.get("waivers"), lambda code: bool(every_rule.matching(code)))
            declarations = load_declarations(settings)
            baseline_counts = {}
            if settings.baseline_path is not None and not settings.baseline_update:
                baseline_counts = dict(Baseline.load(settings.baseline_path).counts)
        except (ConfigError, ValueError) as error:
            raise pytest.UsageError(f"pytest-aiml: {error}") from None
        session = cls(config, settings, every_rule.select(settings.select, settings.ignore))
        session.all_rules = every_rule
        session.config_waivers = waivers
        session.baseline_counts = baseline_counts
        session.preprocessing_specs, session.declared_models = declarations
        if gc.get_freeze_count():
            # An earlier session in this process (a pytester run) froze its heap for an exit
            # that did not come. What it left behind must be collectable again.
            gc.unfreeze()
        return session

    # -- repository ----------------------------------------------------------------------

    @cached_property
    def repo(self) -> RepoFiles:
        started = time.perf_counter()
        repo = discover(self.settings.rootdir, self.settings.exclude)
        log.debug("discovered %d files in %.2fs", len(repo.paths), time.perf_counter() - started)
        return repo

    @cached_property
    def repo_context(self) -> RepoContext:
        return RepoContext(pins=collect_pins(self.repo))

    @cached_property
    def inventory(self) -> Inventory:
        # Under pytest-xdist, one process builds it and the others (workers running
        # repository items, the controller writing the report) read it.
        return xdist_support.computed_once(xdist_support.shared_directory(self.config), "inventory", self._build_inventory)

    def _build_inventory(self) -> Inventory:
        started = time.perf_counter()
        signals_cache = self.signals_cache
        inventory = build_inventory(self.repo, signals_cache)
        log.debug(
            "built the inventory of %d source files in %.2fs (signals cache: %d hits, %d misses)",
            len(inventory.code), time.perf_counter() - started, signals_cache.hits, signals_cache.misses,
        )
        return inventory

    @cached_property
    def repository_results(self) -> RepositoryResults:
        """Return the findings of every repository rule: computed once per run, or reused from the cache."""
        # Under pytest-xdist, the first worker to run a repository item computes them for all.
        return xdist_support.computed_once(xdist_support.shared_directory(self.config), "repository", self._repository_results)

    def _repository_results(self) -> RepositoryResults:
        if self._background_repository is not None:
            return self._background_repository()
        rules, facts, cache = self._repository_inputs()
        cached = cache.get(self.repo)
        if cached is not None:
            log.debug("repository rules: every file they read is unchanged, so their results come from the cache")
            return cached
        return self._check_repository(rules, facts, cache)

    def _repository_inputs(self) -> tuple[Sequence[type[RepoRule]], dict[str, Any], RepositoryCache]:
        from pytest_aiml.report.build import mlops_maturity

        # The rules only when the run includes the repository's items; the summary's facts always.
        rules = self.registry.repo_rules() if self.scope.include_repository else ()
        facts = {"mlops_maturity": mlops_maturity}
        return rules, facts, RepositoryCache(self._cache_directory("aiml-repository"), repository_salt(rules, tuple(facts)))

    def _check_repository(
        self, rules: Sequence[type[RepoRule]], facts: dict[str, Any], cache: RepositoryCache
    ) -> RepositoryResults:
        results = run_repository_rules(rules, self.inventory, facts)
        cache.put(self.repo, results)
        return results

    def _start_repository_check(self) -> None:
        """Check the repository rules in a process of their own while this one runs the file items.

        Called once a cold scan is over, when the files' signals are known: the rules then
        take a core the scan no longer needs instead of running after the file items.
        """
        rules, facts, cache = self._repository_inputs()
        cached = cache.get(self.repo)
        if cached is not None:
            self._background_repository = lambda: cached
            return
        self._background_repository = start_in_background(lambda: self._check_repository(rules, facts, cache))

    @property
    def maturity_level(self) -> str:
        """Return the repository's MLOps maturity level, as the terminal summary shows it."""
        return str(self.repository_results.facts["mlops_maturity"]["level"])

    @cached_property
    def signals_cache(self) -> SignalsCache:
        """Return the cache of the files' inventory signals, which a cold scan's workers fill first."""
        return SignalsCache(self._cache_directory("aiml-signals"), signals_salt())

    @cached_property
    def source_files(self) -> frozenset[str]:
        return frozenset(self.repo.of_kind(*SOURCE_KINDS))

    @cached_property
    def artifact_files(self) -> frozenset[str]:
        """Return the model artifacts: files named like models, plus unnamed files whose bytes are one."""
        from pytest_aiml.artifacts import has_model_extension
        from pytest_aiml.artifacts.sniff import NOT_A_MODEL, sniff_format
        from pytest_aiml.engine.discovery import glob_matches

        options = self.settings.artifacts
        found = set()
        for path in self.repo.paths:
            if any(glob_matches(path, pattern) for pattern in options.exclude):
                continue
            if has_model_extension(path) or any(glob_matches(path, pattern) for pattern in options.include):
                found.add(path)
            elif Path(path).suffix.lower() in CONTENT_SNIFFED_SUFFIXES:
                try:
                    if sniff_format(self.repo.root / path) != NOT_A_MODEL:
                        found.add(path)
                except OSError as error:
                    log.debug("cannot sniff %s: %s", path, error)
        return frozenset(found)

    @cached_property
    def artifact_settings(self) -> Any:
        from pytest_aiml.artifacts.settings import ArtifactSettings

        options = self.settings.artifacts
        return ArtifactSettings(
            max_read_bytes=options.max_read_bytes,
            extra_allowed_globals=options.allowed_globals,
            allow_sklearn_classes=options.allow_sklearn_classes,
            run_onnx_checker=options.onnx_checker,
        )

    def inspect(self, relative: str) -> Any:
        """Inspect one artifact, once per process; nothing in it is ever executed."""
        if relative not in self._inspections:
            from pytest_aiml.artifacts.inspect import inspect_artifact
            from pytest_aiml.artifacts.repository_context import build_repository_context

            if self._artifact_context is None:
                self._artifact_context = build_repository_context(self.repo.root, self.repo.paths)
            self._inspections[relative] = inspect_artifact(
                self.repo.root / relative, relative, root=self.repo.root, repo_files=self.repo.paths,
                settings=self.artifact_settings, context=self._artifact_context,
            )
        return self._inspections[relative]

    @cached_property
    def model_specs(self) -> tuple[Any, ...]:
        """Return the declared models, then the TorchScript/ONNX pairs found beside each other."""
        if not self.registry.matching("AIML81"):
            return self.declared_models
        from pytest_aiml.serving.spec import pair_artifacts

        declared_onnx = {spec.onnx.resolve() for spec in self.declared_models if spec.onnx is not None}
        paired = [
            spec for spec in pair_artifacts(self.repo.root, [Path(path) for path in self.repo.paths])
            if spec.onnx is not None and spec.onnx.resolve() not in declared_onnx
            and not any(glob_matches(self.relative(spec.onnx), pattern) for pattern in self.settings.artifacts.exclude)
        ]
        return (*self.declared_models, *paired)

    @property
    def has_declarations(self) -> bool:
        return bool(self.preprocessing_specs or self.model_specs)

    def preprocessing_functions(self, spec: Any) -> Any:
        if spec.function not in self._functions:
            from pytest_aiml.properties.resolve import resolve_spec_functions

            self._functions[spec.function] = resolve_spec_functions(spec, self.settings.rootdir)
        return self._functions[spec.function]

    @cached_property
    def hypothesis_directory(self) -> Path | None:
        """Return the example database folder under the pytest cache, or None without a cache."""
        cache = getattr(self.config, "cache", None)
        return Path(cache.mkdir("aiml-hypothesis")) if cache is not None else None

    def unsafe_model_files(self, model: Any) -> tuple[str, str] | None:
        """Inspect a model's files before anything loads them; return the first unsafe one and why."""
        for path in (model.torch, model.weights, model.onnx):
            if path is None:
                continue
            relative = self.relative(Path(path))
            if relative.startswith("../"):
                continue
            safety = self.inspect(relative).checks.get("safety")
            if safety is not None and safety.failed:
                details = "; ".join(safety.details[:5])
                return relative, f"{safety.summary}{': ' + details if details else ''}"
        return None

    def relative(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.settings.rootdir)).as_posix()

    @cached_property
    def cache(self) -> AnalysisCache:
        """Return the analysis cache under the pytest cache folder (a no-op cache without one)."""
        directory = self._cache_directory("aiml-analysis")
        return AnalysisCache(directory, analysis_salt(self.registry.file_rules(), self.repo_context.pins))

    def _cache_directory(self, name: str) -> Path | None:
        """Return a folder under the pytest cache, or None without one or with ``--aiml-no-cache``."""
        cache = getattr(self.config, "cache", None)
        if cache is None or self.config.getoption("aiml_no_cache"):
            return None
        return Path(cache.mkdir(name))

    def _applicable_rules(self, relative: str, text: str) -> list[type[FileRule]]:
        """Return the file rules that can report on a source file (``runner.screen``), computed once per file."""
        if relative not in self._rules_by_file:
            screening = screen(relative, text, self.registry.file_rules())
            self._rules_by_file[relative] = list(screening.rules)
            if screening.failure is not None:
                self._syntax_failures[relative] = screening.failure
        return self._rules_by_file[relative]

    def _source(self, relative: str) -> tuple[bytes, str] | None:
        if relative not in self._sources:
            try:
                self._sources[relative] = read_source(self.repo.root / relative)
            except UnreadSource as error:
                self._unread[relative] = error.not_analysed
                self._sources[relative] = None
        return self._sources[relative]

    def plan(self, relative: str) -> FilePlan | None:
        """Decide a source file's items without the full analysis: the rules that apply and
        whether the file parses. None when no rule applies.

        The full libcst analysis waits for the items to run, so that pytest-xdist workers
        each analyse the files of their own items; a cached analysis is used at once.
        """
        if not self._has_rules(relative):
            return None
        if relative in self._unread:
            return FilePlan((), unread=self._unread[relative])
        _content, text = self._sources[relative]
        rules = self._applicable_rules(relative, text)
        self._file_waivers[relative] = self._read_inline_waivers(relative, text)
        codes = tuple(rule.code for rule in rules)
        analysis = self._analyses.get(relative)
        if analysis is not None:
            return FilePlan(codes, analysis.failure)
        return FilePlan(codes, self._syntax_failures.get(relative))

    def _has_rules(self, relative: str) -> bool:
        """Tell whether a source file has items: any rule applies to it, or it could not be read."""
        source = self._source(relative)
        if source is None:
            # A file that exists but is not analysed gets a skipped item with the reason,
            # so that it does not look like a clean one.
            return relative in self._unread
        content, text = source
        if relative not in self._analyses and relative not in self._rules_by_file:
            self._from_cache(relative, content)
        return bool(self._applicable_rules(relative, text))

    def _from_cache(self, relative: str, content: bytes) -> FileAnalysis | None:
        """Take a file's analysis from the cache, and with it the rules that apply to the file.

        The key covers the path, the bytes and the rule set, and a rule's screening
        (``runner.screen``) reads nothing else, so the entry's rules are the rules that
        apply: a warm run screens nothing. Files no rule applies to have entries too, for
        that reason.
        """
        cached = self.cache.get(relative, content)
        if cached is None:
            return None
        self._rules_by_file.setdefault(relative, [self.registry.get(code) for code in cached.rules])
        if cached.rules:
            self._analyses[relative] = cached
        return cached

    def analyze(self, relative: str) -> FileAnalysis:
        """Return the full analysis of a planned source file: from memory, the cache, or a parse."""
        analysis = self._analyses.get(relative)
        if analysis is not None:
            return analysis
        source = self._source(relative)
        assert source is not None, f"{relative} was planned, so it is readable"
        content, text = source
        rules = self._applicable_rules(relative, text)
        codes = tuple(rule.code for rule in rules)
        analysis = self.cache.get(relative, content)
        if analysis is None or analysis.rules != codes:
            failure = self._syntax_failures.get(relative)
            if failure is not None:
                analysis = FileAnalysis(relative, codes, failure=failure)
            else:
                analysis = analyze_text(relative, text, rules, self.repo_context, profile=self.profile, screened=True)
            self.cache.put(relative, content, analysis)
            self.rule_times.add(analysis)
        self._analyses[relative] = analysis
        return analysis

    @cached_property
    def _workers(self) -> int:
        """Return how many processes a scan may use: ``--aiml-jobs``, or one per core up to a limit."""
        return self.config.getoption("aiml_jobs") or default_workers()

    @cached_property
    def profile(self) -> bool:
        """Time each rule on its own: asked for with ``-vv`` or debug logging of ``pytest_aiml``."""
        return self.config.option.verbose >= 2 or log.isEnabledFor(logging.DEBUG)

    @cached_property
    def rule_times(self) -> RuleTimes:
        return RuleTimes()

    def analyzed(self, relative: str) -> FileAnalysis | None:
        """Return the analysis of a file if it is already known, without analysing it."""
        return self._analyses.get(relative)

    def prescan(self, relatives: Sequence[str]) -> Iterator[str]:
        """Scan many uncached files at once over a process pool, yielding each file once it is known.

        Each worker of the pool does all the per-file work: the pre-filters, the analysis,
        the cache entry and the file's inventory signals. This process only reads and
        hashes, and builds the items of each file as soon as its scan is back, while the
        pool works on the next files. Every path of ``relatives`` is yielded, in order.

        Under pytest-xdist, every worker collects every file, so the first worker to get
        there scans them over the pool, and the others wait and read its results. A cold
        scan then keeps every core busy once. Otherwise each worker would parse the files
        of the items it runs and pre-filter every file again.
        """
        pending = [relative for relative in relatives if relative not in self._analyses]
        shared = xdist_support.shared_directory(self.config) if xdist_support.is_worker(self.config) else None
        if len(pending) < PRESCAN_MIN_FILES or (xdist_support.is_worker(self.config) and not xdist_support.can_share(shared)):
            # Without a way to share the scan, each worker analyses the files of its own items.
            yield from relatives
            return
        jobs = []
        for relative in pending:
            source = self._source(relative)
            if source is None:
                continue
            content, _text = source
            if self._from_cache(relative, content) is None:
                jobs.append((relative, content))
        if xdist_support.is_worker(self.config) and jobs:
            scanned_here = False

            def scan() -> list[tuple[str, FileScan]]:
                nonlocal scanned_here
                scanned_here = True
                return list(self._scan(jobs))

            # The worker that scanned may have had more jobs, because this one may have found
            # some of its entries in the cache already. So its results are matched by path.
            stored = dict(xdist_support.computed_once(shared, "prescan", scan))
            missed = {relative for relative, _content in jobs}
            for relative in relatives:
                if relative in stored:
                    self._store_scan(relative, stored[relative])
                    if not scanned_here and relative in missed:
                        # A miss of this worker, filled from the scan of the worker that took the lock first.
                        self._files_from_other_worker += 1
                yield relative
            if scanned_here and self._workers > 1:
                # As in a run without xdist, the repository rules start in a process of their
                # own once the scan is over, and both workers run file items meanwhile. Their
                # results are stored for every worker, which would otherwise wait for the first
                # worker that runs a repository item to check them all.
                self._start_repository_check()
                xdist_support.computed_ahead(shared, "repository", self._repository_results)
            return
        scans = self._scan(jobs)
        # The jobs keep the order of ``relatives``, so each file waits only for its own scan.
        scanned = 0
        for relative in relatives:
            if scanned < len(jobs) and jobs[scanned][0] == relative:
                self._store_scan(*next(scans))
                scanned += 1
            yield relative
        next(scans, None)  # lets the scan finish: its progress line and log
        if jobs and self._workers > 1:
            self._start_repository_check()

    def _store_scan(self, relative: str, scan: FileScan) -> None:
        source = self._source(relative)
        if source is None or relative in self._analyses:
            return
        analysis = scan.analysis
        self._rules_by_file[relative] = [self.registry.get(code) for code in analysis.rules]
        if analysis.rules:
            self._analyses[relative] = analysis
        if scan.signals is not None:
            self.signals_cache.put(self.signals_cache.key(relative, source[0]), scan.signals.modules, scan.signals.signals)
        self.repo.computed_views.add(relative, source[0], scan.views)

    def _scan(self, jobs: Sequence[tuple[str, bytes]]) -> Iterator[tuple[str, FileScan]]:
        if not jobs:
            return
        started = time.perf_counter()
        workers = self._workers
        settings = ScanSettings(self.registry, self.repo_context, self.cache, profile=self.profile)
        progress = _ScanProgress(self.config, len(jobs), workers)
        for (relative, _content), scan in zip(jobs, scan_in_pool(jobs, settings, workers)):
            self.rule_times.add(scan.analysis)
            progress.advance()
            yield relative, scan
        progress.finish(time.perf_counter() - started)
        log.debug("pre-scanned %d files in %.2fs", len(jobs), time.perf_counter() - started)

    def file_waivers(self, relative: str) -> list[Waiver]:
        """Return the inline waivers of an analysed file."""
        return self._file_waivers.get(relative, [])

    def _read_inline_waivers(self, relative: str, text: str) -> list[Waiver]:
        """Find a file's inline waivers. Raises InlineWaiverError for an invalid waiver."""
        return inline_waivers(relative, text, lambda code: bool(self.all_rules.matching(code)))

    def repository_waivers(self, findings: Sequence[Finding]) -> list[Waiver]:
        """Return the inline waivers of the source files that a repository rule's findings name.

        A finding on a line (AIML804 on a constant) takes the waivers of that line; one on a
        whole file (AIML409 names an untested module) takes ``waive-file`` comments alone.
        """
        waivers: list[Waiver] = []
        for path in sorted({finding.path for finding in findings} & self.source_files):
            source = self._source(path)
            if path not in self._file_waivers and source is not None:
                try:
                    self._file_waivers[path] = self._read_inline_waivers(path, source[1])
                except InlineWaiverError as error:
                    # The file's own items report the invalid comment, so here it waives nothing.
                    log.debug("ignoring an invalid inline waiver for repository findings: %s", error)
            waivers += self.file_waivers(path)
        return waivers

    def item_waivers(self, relative: str | None, findings: Sequence[Finding]) -> list[Waiver]:
        """Return the inline waivers that may cover an item's findings.

        A file rule's item takes those of its file (``relative``). A repository rule's item
        takes those of the files that its findings name.
        """
        if relative:
            return self.file_waivers(relative)
        return self.repository_waivers(findings)

    def settle(
        self, rule: type[Rule], findings: Sequence[Finding], *, inline: Sequence[Waiver], markers: Sequence[Waiver],
    ) -> Verdict:
        """Apply the waivers of every source, the baseline and the fail-on threshold to an item's findings."""
        return settle(
            rule,
            findings,
            config_waivers=self.config_waivers,
            inline_waivers=inline,
            marker_waivers=markers,
            baseline=self.baseline_counts,
            fail_on=self.settings.fail_on,
            today=self.today,
        )

    # -- fixes ---------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # The files are fixed before anything is collected, so every item analyses the
        # fixed text and a fixed finding no longer fails, as with ``ruff --fix``. Under
        # pytest-xdist only the controller fixes, and its workers start in xdist's own
        # pytest_sessionstart, which runs after this one: each file is written once.
        fix, diff = self.config.getoption("aiml_fix"), self.config.getoption("aiml_diff")
        if not (fix or diff) or xdist_support.is_worker(self.config):
            return
        from pytest_aiml.fixes import fix_files

        rules = [rule for rule in self.registry.file_rules() if rule.fixer is not None]
        fixer_codes = {rule.code for rule in rules}
        targets = [path for path in sorted(self.source_files) if path.endswith(".py") and self._fix_covers(path)]
        targets = [path for path in targets if self._may_have_findings(path, fixer_codes)]
        started = time.perf_counter()
        self.fix_report = fix_files(self.repo.root, targets, rules, self.repo_context, self._fix_filter, write=not diff)
        log.debug("fix step over %d files in %.2fs", len(targets), time.perf_counter() - started)
        for path in targets:
            # What this process read before the fix is stale now.
            self._sources.pop(path, None)
            self._rules_by_file.pop(path, None)
            self._syntax_failures.pop(path, None)
            self._analyses.pop(path, None)

    def _fix_covers(self, relative: str) -> bool:
        """Tell whether the fix step may change a file: any file, or those under the named paths."""
        if self.scope.only or not self.scope.explicit:
            return self.scope.covers(relative)
        invocation = Path(self.config.invocation_params.dir)
        named = tuple(self.relative((invocation / arg.split("::", 1)[0]).resolve()) for arg in self.config.args)
        return xdist_support.ScanScope(explicit=True, include_repository=False, paths=named).covers(relative)

    def _may_have_findings(self, relative: str, codes: set[str]) -> bool:
        """Skip, without parsing, a file whose cached analysis has no finding of these rules."""
        source = self._source(relative)
        if source is None:
            return False
        content, text = source
        rules = self._applicable_rules(relative, text)
        if not codes & {rule.code for rule in rules}:
            return False
        cached = self.cache.get(relative, content)
        if cached is None or cached.rules != tuple(rule.code for rule in rules):
            return True
        return any(finding.code in codes for finding in cached.findings)

    def _fix_filter(self, relative: str, text: str) -> Any:
        """Return the filter that keeps the findings the items would fail on: the same settle() decision.

        NOTE: ``aiml_waive`` markers belong to items, which do not exist yet when the
        fix step runs, so a finding waived only by a marker is fixed.
        """
        from pytest_aiml.fixes import SkipFile

        try:
            inline = self._read_inline_waivers(relative, text)
        except InlineWaiverError as error:
            raise SkipFile(f"has an invalid inline waiver: {error}") from None

        def active(rule: type[Rule], findings: Sequence[Finding]) -> list[Finding]:
            verdict = settle(
                rule, findings, config_waivers=self.config_waivers, inline_waivers=inline,
                baseline=self.baseline_counts, fail_on=self.settings.fail_on, today=self.today,
            )
            return verdict.active

        return active

    # -- collection ----------------------------------------------------------------------

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        # With explicit path arguments the items follow pytest's own traversal, so that
        # ``pytest --aiml src/serve.py`` and node ids like ``src/serve.py::AIML201-...`` work.
        if not self.scope.explicit and not (self.scope.only and parent.session.isinitpath(file_path)):
            return None
        relative = self.relative(file_path)
        if self.scope.only:
            if file_path.suffix == ".py":
                return None  # pytest_pycollect_makemodule above makes its collector
            self._named_files.add(relative)
        if relative in self.source_files:
            return AimlFile.from_parent(parent, path=file_path, aiml=self)
        if relative in self.artifact_files and self.registry.artifact_rules():
            return ArtifactFile.from_parent(parent, path=file_path, aiml=self)
        if relative == "pyproject.toml" and self.has_declarations:
            return DeclaredFile.from_parent(parent, path=file_path, aiml=self)
        return None

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        # With --aiml-only pytest traverses nothing: no test module and no conftest.py
        # below the rootdir is imported, and the items come from the repository listing.
        if self.scope.only and collection_path != self.settings.rootdir:
            return True
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makemodule(self, module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        # pytest imports any .py file named on the command line as a test module. Under
        # --aiml, a named source file that is not a test file (``pytest --aiml train.py``)
        # is only scanned: importing it would run the user's training or serving code.
        if self.scope.only:
            if self.relative(module_path) in self.source_files:
                # A named source file yields its items here, so node ids on the command line resolve.
                self._named_files.add(self.relative(module_path))
                return AimlFile.from_parent(parent, path=module_path, aiml=self)
            return NotImported.from_parent(parent, path=module_path)
        if not self.scope.explicit or not parent.session.isinitpath(module_path):
            return None
        patterns = self.config.getini("python_files")
        if any(fnmatch.fnmatch(module_path.name, pattern) for pattern in patterns):
            return None
        return NotImported.from_parent(parent, path=module_path)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
        # Runs before -k/-m deselection and inside --lf's filtering, so both apply to these items.
        added: list[pytest.Item] = []
        if not self.scope.explicit:
            known = {item.nodeid for item in items}
            wanted = {path for path in self.source_files if self.scope.covers(path)} - self._named_files
            # Analysing over the pool first lets planning reuse each analysis instead of
            # checking every file's syntax again in this process.
            for relative in self.prescan(sorted(wanted)):
                if not self._has_rules(relative):
                    continue  # no items, so no collector and no collection report either
                collector = AimlFile.from_parent(session, path=self.settings.rootdir / relative, aiml=self)
                added.extend(item for item in session.genitems(collector) if item.nodeid not in known)
            if self.registry.artifact_rules():
                wanted = {path for path in self.artifact_files if self.scope.covers(path)} - self._named_files
                for relative in sorted(wanted):
                    collector = ArtifactFile.from_parent(session, path=self.settings.rootdir / relative, aiml=self)
                    added.extend(item for item in session.genitems(collector) if item.nodeid not in known)
        if not self.scope.explicit and self.has_declarations:
            declared = DeclaredFile.from_parent(session, path=self.settings.rootdir / "pyproject.toml", aiml=self)
            added.extend(item for item in session.genitems(declared) if item.nodeid not in known)
        if self.scope.include_repository and self.registry.repo_rules():
            repository = AimlRepository.from_parent(session, name=".", nodeid=".", aiml=self)
            added.extend(session.genitems(repository))
        items.extend(added)

    # -- results -------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if call.when == "call" and isinstance(item, AimlItem):
            report.aiml_records = [list(entry) for entry in item.aiml_records]
        return report

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # Serially a collection error stops the run (exit 2). Under pytest-xdist the run goes
        # on without the file's items, so its findings are missing from the report and the
        # SARIF log all the same: both must mark the run as partial.
        if report.failed and report.nodeid.split("::", 1)[0] in self.source_files | self.artifact_files:
            self.collection_failed = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in getattr(report, "aiml_records", ()):
            if name == RESULT_PROPERTY:
                self.results.append(dict(value, nodeid=report.nodeid, outcome=report.outcome))
            elif name == ARTIFACT_PROPERTY:
                self.artifact_results[value["rel_path"]] = value
            elif name == PREPROCESSING_PROPERTY:
                self.preprocessing_results.append(dict(value))
            elif name == SERVING_PROPERTY:
                self.serving_results.append(dict(value))

    @cached_property
    def complete_run(self) -> bool:
        """Tell whether every generated item was selected, so that unused waivers are truly stale."""
        option = self.config.option
        # ``-m aiml`` selects every generated item, so the run is still complete.
        partial_marks = option.markexpr not in ("", "aiml")
        # Named paths cover everything only when the rootdir is among them.
        partial_paths = not self.scope.include_repository
        return not (partial_paths or option.keyword or partial_marks or getattr(option, "lf", False))

    @cached_property
    def summary(self) -> RunSummary:
        baseline_entries: tuple = ()
        if self.settings.baseline_path is not None and not self.settings.baseline_update:
            baseline_entries = Baseline.load(self.settings.baseline_path).entries
        return summarize(
            self.results, self.config_waivers, baseline_entries, complete=self.complete_run, interrupted=self.interrupted
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if xdist_support.is_worker(self.config):
            xdist_support.send_analysis_times(
                self.config, xdist_support.WorkerAnalysis(self._cache_counts(), self.rule_times, self._files_from_other_worker)
            )
            return
        # Items that never ran found nothing, so an interrupted run's report is marked partial.
        self.interrupted = self.collection_failed or exitstatus in (
            pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR,
        )
        summary = self.summary
        if self.settings.baseline_update and self.settings.baseline_path is not None and not summary.complete:
            # A partial run would record only part of today's findings and drop the rest.
            self.baseline_refused = True
        elif self.settings.baseline_update and self.settings.baseline_path is not None:
            recorded = [finding for result in self.results for finding in (result.get("findings") or [])]
            recorded += [finding for result in self.results for finding in (result.get("baselined") or [])]
            write_baseline(self.settings.baseline_path, recorded)
        if self.scope.only and self.scope.paths and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            # Named files that no rule applies to (a pre-commit hook's changed files) have nothing to fail.
            session.exitstatus = pytest.ExitCode.OK
        if self.settings.strict_waivers and summary.stale_waivers and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.config.getoption("aiml_sarif"):
            from pytest_aiml import __version__
            from pytest_aiml.report.sarif import build_sarif, write_sarif

            log_document = build_sarif(self.results, self.registry, tool_version=__version__, interrupted=self.interrupted)
            write_sarif(log_document, (Path(self.config.invocation_params.dir) / self.config.getoption("aiml_sarif")).resolve())
        if self.settings.report_path is None:
            return
        from pytest_aiml.report.build import build_report, declared_section
        from pytest_aiml.report.writer import write_report

        document = build_report(
            self.inventory, self.results, self.registry, summary, self.artifact_results,
            declared=declared_section(self.preprocessing_specs, self.preprocessing_results, self.serving_results, self.results),
        )
        self.config.pluginmanager.hook.pytest_aiml_amend_report(report=document)
        write_report(document, self.settings.report_path)

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.scope.only:
            # A run that checks the repository alone has run none of the user's code. Its heap
            # (items, analyses, the modules of libcst and of the rules) is freed by reference
            # counting at exit. The interpreter's last garbage collection would first walk all
            # of it for cycles, which took 0.2 to 0.3 s of a 2 s warm run on pytorch-lightning.
            # Frozen objects are left out of that walk. Python promises no finalizer of an
            # object still alive at exit, and atexit handlers (coverage, logging) run before.
            # This hook runs first, so pytest's own collection at unconfigure skips this heap too.
            # That collection looks for unraisable exceptions in the tests' garbage, and no test ran.
            gc.freeze()

    def _cache_counts(self) -> tuple[int, int] | None:
        """Return the analysis cache's hits and misses, or None when this process never opened it."""
        # The pytest-xdist controller analyses nothing. Opening the cache only to count nothing
        # would list the repository's files and read its dependency files at the end of its run.
        if "cache" not in self.__dict__:
            return None
        return self.cache.hits, self.cache.misses

    def _write_rule_times(self, terminalreporter: Any) -> None:
        """Show where the analysis time went: with ``-vv`` in the terminal, with debug logging in the log."""
        counts = self._cache_counts()
        caches = [] if counts is None else [f"analysis cache: {_cache_line(*counts)}"]
        hits = counts[0] if counts is not None else 0
        rule_times = RuleTimes()
        rule_times.merge(self.rule_times)
        for worker, analysis in xdist_support.received_analysis_times(self.config).items():
            rule_times.merge(analysis.rule_times)
            if analysis.cache_counts is not None:
                line = f"analysis cache of {worker}: {_cache_line(*analysis.cache_counts)}"
                if analysis.files_from_other_worker:
                    line += f" ({_plural(analysis.files_from_other_worker, 'file', 'files')} from another worker's scan)"
                caches.append(line)
                hits += analysis.cache_counts[0]
        lines = rule_times.lines()
        cache = "; ".join(caches) or "analysis cache: not used"
        log.debug("%s; time per rule over the files analysed in this run:\n%s", cache, "\n".join(lines) or "none")
        if self.config.option.verbose < 2:
            return
        terminalreporter.write_sep("-", "aiml analysis time")
        for line in caches or [cache]:
            terminalreporter.write_line(line)
        if not lines:
            terminalreporter.write_line("every file came from the cache" if hits else "no file was analysed")
        for line in lines:
            terminalreporter.write_line(line)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if xdist_support.is_worker(self.config):
            return
        from pytest_aiml.reporter import write_summary

        write_summary(terminalreporter, self)
        self._write_rule_times(terminalreporter)
        if self.fix_report is not None:
            from pytest_aiml.fixes import diff_text, summary_lines

            terminalreporter.write_sep("-", "aiml fixes")
            for line in summary_lines(self.fix_report):
                terminalreporter.write_line(line)
            if not self.fix_report.write:
                terminalreporter.write(diff_text(self.fix_report))
        from pytest_aiml.annotations import annotations_requested, github_annotations

        if annotations_requested(self.config.getoption("aiml_annotations"), os.environ):
            for line in github_annotations(self.results):
                terminalreporter.write_line(line)


class _ScanProgress:
    """The progress of a long cold scan, on the collection line's terminal, as pytest shows collecting.

    A cold scan of a large repository parses for many seconds before the first item
    exists; without a line, pytest would look stuck at "collecting ...". Quiet runs
    (``-q``) and runs without a terminal reporter stay silent.
    """

    #: Fewer files than this scan in a moment, and get no progress line.
    MIN_FILES = 100

    def __init__(self, config: pytest.Config, total: int, workers: int) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        shown = reporter is not None and config.option.verbose >= 0 and total >= self.MIN_FILES
        self.reporter = reporter if shown else None
        self.total = total
        self.done = 0
        self.live = bool(self.reporter is not None and self.reporter.isatty)
        if self.reporter is not None:
            message = f"aiml: analysing {total} files in {_plural(workers, 'process', 'processes')}"
            if self.live:
                self.reporter.rewrite(message)
            else:
                self.reporter.write_line(message)

    def advance(self) -> None:
        self.done += 1
        if self.live and self.reporter is not None and (self.done % 25 == 0 or self.done == self.total):
            self.reporter.rewrite(f"aiml: analysed {self.done} of {self.total} files", erase=True)

    def finish(self, seconds: float) -> None:
        if self.reporter is None:
            return
        message = f"aiml: analysed {self.total} files in {seconds:.1f}s"
        if self.live:
            self.reporter.rewrite(message, erase=True)
            self.reporter.line("")
        else:
            self.reporter.write_line(message)


def _plural(count: int, noun: str, nouns: str) -> str:
    return f"{count} {noun if count == 1 else nouns}"


def _cache_line(hits: int, misses: int) -> str:
    return f"{_plural(hits, 'hit', 'hits')}, {_plural(misses, 'miss', 'misses')}"


def _check_fix_options(config: pytest.Config) -> None:
    """Reject --aiml-fix with an item filter: the fix step runs before items exist, so the filter could not narrow it."""
    if not config.getoption("aiml_fix") or config.getoption("aiml_diff"):
        return
    option = config.option
    filters = [("-k", bool(option.keyword)), ("-m", option.markexpr not in ("", "aiml")), ("--lf", bool(getattr(option, "lf", False)))]
    for flag, given in filters:
        if given:
            raise pytest.UsageError(
                f"pytest-aiml: --aiml-fix rewrites files before any item is selected, so {flag} cannot narrow it; "
                "choose the rules with --aiml-select=CODES and the files with path arguments"
            )
