"""The step runner: every step cached under ``OUT/cache/<kind>-<hash>/`` by the hash of its resolved config.

A :class:`Step` is one unit of work (generate a dataset, align real photos, build a
Syn-LFW-like set, train, evaluate, analyse). Its id is ``<kind>-<hash>`` where the
hash covers the step's config and, recursively, the ids of the steps it depends
on, so identical datasets and models are shared between suites and a re-run
skips finished work. Inside a step folder::

    config.json   written first: the resolved config, the dependency ids, the label
    ...           the step's outputs (``dataset/``, ``run/``, ``aligned/``, ``results.json``)
    done.json     written atomically last: the result summary and wall time

A folder without ``done.json`` is unfinished (a killed run): the step runs again
and its executor resumes what it can (the dataset writer skips complete shards,
the trainer continues from its last checkpoint, alignment from its log).

Settings that do not change results (device, loader workers, process count) are
passed at run time and kept out of the hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synface.errors import SynfaceError
from synface.io import atomic_write_json

logger = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when a step's outputs change meaning
CONFIG_FILE, DONE_FILE = "config.json", "done.json"
STEP_LOG = "steps.jsonl"
DEPENDENCY_PREFIX = "@"  # "@<step id>" strings in a config are replaced by that step's output path


def config_hash(data: Any) -> str:
    """SHA-256 (first 12 hex digits) of canonical JSON."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True, eq=False)
class Step:
    """One cached unit of work.

    Attributes:
        kind: the executor, one of :data:`OUTPUT_NAMES`.
        config: JSON-safe settings that define the result; ``"@<id>"`` strings name
            a dependency's output path.
        deps: steps that must finish first.
        label: a human-readable description for logs and reports.
        runtime: settings that do not change the result (device, workers); not hashed.
    """

    kind: str
    config: Mapping[str, Any]
    deps: tuple[Step, ...] = ()
    label: str = ""
    runtime: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """``<kind>-<hash of config and dependency ids>``."""
        return f"{self.kind}-{config_hash([CACHE_VERSION, self.kind, self.config, sorted(d.id for d in self.deps)])}"

    def ref(self) -> str:
        """The placeholder other configs use for this step's output path."""
        return f"{DEPENDENCY_PREFIX}{self.id}"


@dataclass
class StepRecord:
    """What happened to one step in a run."""

    id: str
    kind: str
    label: str
    status: str  # "ran", "cached" (an earlier run did it) or "shared" (another suite of this run did)
    seconds: float
    result: dict[str, Any]


Executor = Callable[["StepContext"], dict[str, Any]]
_EXECUTORS: dict[str, Executor] = {}
# What each kind of step produces inside its folder (the path "@<id>" references resolve to).
OUTPUT_NAMES: dict[str, str] = {
    "generate": "dataset", "statistics": "statistics", "synlfw": "dataset", "align": "aligned",
    "train": "run", "evaluate": "results.json", "analyse": "analysis",
}


def register_executor(kind: str, output: str | None = None) -> Callable[[Executor], Executor]:
    """Register the function that runs steps of ``kind``; a new kind names its ``output`` (file or folder)."""
    if output is not None:
        OUTPUT_NAMES[kind] = output
    assert kind in OUTPUT_NAMES, f"step kind {kind!r} needs an output name"

    def decorator(function: Executor) -> Executor:
        _EXECUTORS[kind] = function
        return function

    return decorator


@dataclass
class StepContext:
    """What an executor gets: its step, its folder, resolved config and the run's settings."""

    step: Step
    folder: Path
    config: dict[str, Any]
    device: str
    dep_outputs: dict[str, Path]

    @property
    def output(self) -> Path:
        """The step's own output path (``folder / OUTPUT_NAMES[kind]``)."""
        return self.folder / OUTPUT_NAMES[self.step.kind]


class Runner:
    """Runs steps in dependency order, each at most once per cache folder.

    Args:
        out: the run folder; steps live in ``out/cache``.
        device: ``auto``, ``cpu``, ``cuda``... passed to every executor.
        before_step: called with each step just before it runs (not for cached
            ones); tests use it to simulate a kill.
    """

    def __init__(self, out: str | Path, device: str = "auto",
                 before_step: Callable[[Step], None] | None = None) -> None:
        self.out = Path(out)
        self.cache = self.out / "cache"
        self.device = device
        self.before_step = before_step
        self.records: dict[str, StepRecord] = {}

    def folder(self, step: Step) -> Path:
        """The cache folder of ``step``."""
        return self.cache / step.id

    def output(self, step: Step) -> Path:
        """The output path of ``step`` (its dataset, run folder, aligned tree or results file)."""
        return self.folder(step) / OUTPUT_NAMES[step.kind]

    def is_done(self, step: Step) -> bool:
        """Whether ``step`` finished in an earlier or this run."""
        return (self.folder(step) / DONE_FILE).is_file()

    def result(self, step: Step) -> dict[str, Any]:
        """The result summary a finished step recorded."""
        path = self.folder(step) / DONE_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))["result"]
        except (OSError, ValueError, KeyError) as error:
            raise SynfaceError(f"{path}: unreadable step record ({error}); delete its folder to redo the step") from None

    def run(self, steps: Iterable[Step]) -> list[StepRecord]:
        """Run ``steps`` and their dependencies (each once); returns the records in run order."""
        order = topological_order(steps)
        _check_executors(order)
        records = []
        for number, step in enumerate(order, start=1):
            records.append(self._run_one(step, number, len(order)))
        return records

    def _run_one(self, step: Step, number: int, total: int) -> StepRecord:
        if step.id in self.records:  # done earlier in this run, for another suite
            earlier = self.records[step.id]
            return StepRecord(step.id, step.kind, step.label, "shared", 0.0, earlier.result)
        folder = self.folder(step)
        if self.is_done(step):
            record = StepRecord(step.id, step.kind, step.label, "cached", 0.0, self.result(step))
            logger.debug("[%d/%d] %s (%s): cached", number, total, step.id, step.label)
        else:
            if self.before_step is not None:
                self.before_step(step)
            logger.info("[%d/%d] %s: %s", number, total, step.kind, step.label or step.id)
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_json(folder / CONFIG_FILE, {"id": step.id, "kind": step.kind, "label": step.label,
                                                     "config": step.config, "deps": [d.id for d in step.deps],
                                                     "runtime": dict(step.runtime)})
            started = time.perf_counter()
            context = StepContext(step, folder, resolve_references(step.config, self),
                                  self.device, {d.id: self.output(d) for d in step.deps})
            result = _EXECUTORS[step.kind](context)
            seconds = time.perf_counter() - started
            atomic_write_json(folder / DONE_FILE, {"id": step.id, "seconds": seconds, "result": result})
            record = StepRecord(step.id, step.kind, step.label, "ran", seconds, result)
            self._log(record)
        self.records[step.id] = record
        return record

    def _log(self, record: StepRecord) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "id": record.id, "label": record.label,
                           "status": record.status, "seconds": round(record.seconds, 3)})
        with (self.out / STEP_LOG).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def resolve_references(config: Any, runner: Runner) -> Any:
    """A copy of ``config`` with every ``"@<step id>"`` string replaced by that step's output path."""
    if isinstance(config, Mapping):
        return {key: resolve_references(value, runner) for key, value in config.items()}
    if isinstance(config, (list, tuple)):
        return [resolve_references(value, runner) for value in config]
    if isinstance(config, str) and config.startswith(DEPENDENCY_PREFIX):
        step_id = config[len(DEPENDENCY_PREFIX):]
        kind = step_id.rsplit("-", 1)[0]
        return str(runner.cache / step_id / OUTPUT_NAMES[kind])
    return config


def topological_order(steps: Iterable[Step]) -> list[Step]:
    """Dependencies first, each step once, otherwise in the order given."""
    order: list[Step] = []
    seen: set[str] = set()

    def visit(step: Step) -> None:
        if step.id in seen:
            return
        for dep in step.deps:
            visit(dep)
        seen.add(step.id)
        order.append(step)

    for step in steps:
        visit(step)
    return order


def _check_executors(steps: list[Step]) -> None:
    from synface.experiments import exec_data, exec_model  # noqa: F401  (registers the executors)

    unknown = sorted({s.kind for s in steps if s.kind not in _EXECUTORS})
    if unknown:
        raise SynfaceError(f"no executor for step kinds {unknown}; known: {', '.join(sorted(_EXECUTORS))}")
