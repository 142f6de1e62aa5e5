"""Running suites end to end: validate everything, run the steps (cached, resumable), write results and the report.

::

    from synface.experiments import run_suites

    outcomes = run_suites("out/exp", ["table3"], preset="tiny", real_data="data/cfp")

Everything is planned and checked before the first step runs: the suite and preset
names, every override, the real-data folders, the face model and every generation
and training config. A re-run of the same command skips finished steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from synface.errors import ConfigError
from synface.experiments.plan import Planner
from synface.experiments.realdata import inspect_cfp, inspect_lfw
from synface.experiments.report import SUITES_DIR, write_report
from synface.experiments.runner import Runner, Step, StepRecord, topological_order
from synface.experiments.spec import (
    list_suites,
    load_preset,
    load_suite,
    split_overrides,
)
from synface.experiments.suites import BUILDERS, SuitePlan
from synface.io import atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)


@dataclass
class SuiteOutcome:
    """What one suite run did: its records, wall time and where its results are."""

    name: str
    seconds: float
    records: list[StepRecord]
    results_path: Path

    @property
    def ran(self) -> list[str]:
        """Ids of the steps this run executed (not taken from the cache)."""
        return [r.id for r in self.records if r.status == "ran"]


def expand_suites(names: Sequence[str]) -> list[str]:
    """Suite names with ``all`` expanded, in the paper's order, each once.

    Raises:
        ConfigError: no suite given.
    """
    from synface.experiments import figures  # noqa: F401  (registers the figure builders)

    if not names:
        raise ConfigError(f"give a suite name; valid: {', '.join(list_suites())}, all")
    order = ["table1", "table2", "table3", "fig3", "fig5", "fig6", "fig7"]
    known = list_suites()
    expanded: list[str] = []
    for name in names:
        for item in (sorted(known, key=lambda n: order.index(n) if n in order else len(order))
                     if name == "all" else [name]):
            if item not in expanded:
                expanded.append(item)
    return expanded


def plan_suites(names: Sequence[str], preset: str, real_data: str | Path | None = None,
                lfw: str | Path | None = None, overrides: Sequence[str] = ()) -> tuple[Planner, list[SuitePlan]]:
    """Validate and plan suites (no work is done).

    Raises:
        ConfigError: unknown suite or preset, a bad override, a suite needing data that was not given.
        DataError: a real-data folder that is missing or malformed.
        AssetError: the face model cannot be found.
    """
    suites = expand_suites(names)
    preset_overrides, suite_overrides = split_overrides(overrides)
    preset_config = load_preset(preset, preset_overrides)
    if suite_overrides and len(suites) > 1:
        raise ConfigError("suite.key=value overrides need a single suite (their keys differ between suites)")
    specs = [load_suite(name, preset, suite_overrides) for name in suites]
    planner = Planner(preset_config,
                      cfp=inspect_cfp(real_data) if real_data else None,
                      lfw=inspect_lfw(lfw) if lfw else None)
    plans = []
    for spec in specs:
        if spec.builder not in BUILDERS:
            raise ConfigError(f"suite {spec.name}: unknown builder {spec.builder!r}; known: {', '.join(BUILDERS)}")
        plans.append(BUILDERS[spec.builder](spec, planner))
    return planner, plans


def describe_plan(plans: Sequence[SuitePlan], runner: Runner) -> list[dict[str, Any]]:
    """Every step of the plans (dependencies first) with whether it is already done; train steps under
    torchrun also show their command."""
    from synface.experiments.exec_model import torchrun_command

    rows = []
    for step in topological_order([s for plan in plans for s in plan.steps]):
        row = {"id": step.id, "kind": step.kind, "label": step.label, "done": runner.is_done(step)}
        nproc = int(step.runtime.get("nproc_per_node", 1)) if step.kind == "train" else 1
        if nproc > 1:
            config = runner.folder(step) / "run-config.yaml"
            row["command"] = " ".join(torchrun_command(str(step.runtime.get("launcher", "torchrun")), nproc, config))
        rows.append(row)
    return rows


def run_suites(out: str | Path, names: Sequence[str], preset: str = "tiny", real_data: str | Path | None = None,
               lfw: str | Path | None = None, overrides: Sequence[str] = (), device: str = "auto",
               before_step: Callable[[Step], None] | None = None) -> list[SuiteOutcome]:
    """Plan, validate, then run suites into ``out``, writing results and ``out/report.md`` after each.

    Args:
        out: the run folder (created; re-running resumes).
        names: suite names, or ``all``.
        preset: ``tiny``, ``small`` or ``paper``.
        real_data: the CFP folder (raw, synface-aligned or pre-aligned).
        lfw: the LFW folder with ``pairs.txt``.
        overrides: ``key=value`` (preset) and ``suite.key=value`` (suite settings).
        device: where steps run (``auto``: CUDA when present).
        before_step: called before each step that runs (tests simulate kills with it).

    Returns:
        One outcome per suite.
    """
    planner, plans = plan_suites(names, preset, real_data, lfw, overrides)
    runner = Runner(out, device, before_step)
    outcomes = []
    for plan in plans:
        started = time.perf_counter()
        records = runner.run(plan.steps)
        sections, raw = plan.collect(runner, Path(out))
        seconds = time.perf_counter() - started
        path = save_suite_results(Path(out), plan, planner, sections, raw, records, seconds)
        write_report(out)
        logger.info("%s: done in %.0f s (%d steps run, %d cached or shared); report: %s", plan.spec.name, seconds,
                    sum(r.status == "ran" for r in records), sum(r.status != "ran" for r in records),
                    Path(out) / "report.md")
        outcomes.append(SuiteOutcome(plan.spec.name, seconds, records, path))
    return outcomes


def save_suite_results(out: Path, plan: SuitePlan, planner: Planner, sections: list[dict[str, Any]],
                       raw: dict[str, Any], records: list[StepRecord], seconds: float) -> Path:
    """Write ``OUT/suites/<suite>/results.json`` and ``config.yaml``; returns the results path."""
    folder = out / SUITES_DIR / plan.spec.name
    preset = planner.preset.to_dict()
    document = {
        "suite": plan.spec.name, "title": plan.spec.title, "description": plan.spec.description,
        "preset": planner.preset.name, "preset_config": preset, "settings": plan.spec.settings,
        "published": plan.spec.published, "seconds": seconds,
        "steps_ran": sum(r.status == "ran" for r in records),
        "steps_cached": sum(r.status != "ran" for r in records),
        "rules": list(planner.preset.evaluation.rules), "notes": list(dict.fromkeys(planner.notes)),
        "real_data": {kind: real.describe() for kind, real in (("cfp", planner.cfp), ("lfw", planner.lfw)) if real},
        "sections": sections, "raw": raw,
        "test_sets": [{"id": r.id, "kind": r.kind, "label": r.label, "result": r.result} for r in records
                      if r.kind in ("synlfw", "statistics")],
        "steps": [{"id": r.id, "label": r.label, "status": r.status, "seconds": round(r.seconds, 3)} for r in records],
    }
    atomic_write_json(folder / "results.json", document)
    atomic_write_text(folder / "config.yaml", yaml.safe_dump({"suite": plan.spec.name, "settings": plan.spec.settings,
                                                              "preset": preset}, sort_keys=False))
    return folder / "results.json"
