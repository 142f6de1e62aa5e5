"""`synface experiment`: run the paper's experiments as cached, resumable suites and write a report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


class _IntermixedParser(argparse.ArgumentParser):
    """Accepts ``key=value`` overrides and suite names before and after options."""

    _parsing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._parsing:
            return super().parse_known_args(args, namespace)
        self._parsing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False


def register(subparsers: argparse._SubParsersAction) -> None:
    parser_class = subparsers._parser_class
    subparsers._parser_class = _IntermixedParser
    try:
        parser = subparsers.add_parser(
            "experiment",
            help="run the paper's experiments (Tables 1-3, Figs. 3, 5-7) as cached, resumable suites",
            description="Run one or more suites (or all) at a preset and write OUT/report.md with tables laid "
            "out like the paper's, the published numbers alongside, and PNG figures. Steps are cached in "
            "OUT/cache by config hash: suites share datasets and models, and a re-run (or a killed run) skips "
            "finished steps. key=value overrides the preset (e.g. train.epochs=3); suite.key=value a suite "
            "setting.",
        )
    finally:
        subparsers._parser_class = parser_class
    parser.add_argument("items", nargs="*", metavar="SUITE|key=value", help="suite names (or all) and overrides")
    parser.add_argument("--preset", default="tiny", help="tiny (CPU smoke run), small (one GPU) or paper")
    parser.add_argument("--out", help="run folder (created; re-running resumes)")
    parser.add_argument("--real-data", metavar="CFP_DIR", help="CFP folder: real training identities, CFP-FF/FP tests")
    parser.add_argument("--lfw", metavar="DIR", help="LFW folder (name/name_0001.jpg) with pairs.txt in it or its parent")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    parser.add_argument("--list", action="store_true", help="list the suites and presets, then exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate and print the steps (and torchrun commands) without running them")
    parser.set_defaults(func=run)


def _list() -> int:
    from synface.experiments.spec import (
        PRESET_NAMES,
        list_suites,
        load_preset,
        load_suite,
    )

    print("suites:")
    for name in list_suites():
        print(f"  {name:8s} {load_suite(name, 'tiny').title}")
    print("  all      every suite above, sharing datasets and models")
    print("presets:")
    for name in PRESET_NAMES:
        print(f"  {name:8s} {load_preset(name).description}")
    return 0


def run(args: argparse.Namespace) -> int:
    from synface.errors import ConfigError

    if args.list:
        return _list()
    suites = [item for item in args.items if "=" not in item]
    overrides = [item for item in args.items if "=" in item]
    if not suites:
        raise ConfigError("synface experiment: give a suite (or all); see synface experiment --list")
    if not args.out:
        raise ConfigError("synface experiment: --out DIR is required (the run folder)")
    from synface.experiments.run import describe_plan, plan_suites, run_suites
    from synface.experiments.runner import Runner

    if args.dry_run:
        planner, plans = plan_suites(suites, args.preset, args.real_data, args.lfw, overrides)
        for row in describe_plan(plans, Runner(args.out, args.device)):
            status = "done" if row["done"] else "todo"
            print(f"{status}  {row['id']}  {row['label']}" + (f"\n      {row['command']}" if "command" in row else ""))
        for note in dict.fromkeys(planner.notes):
            print(f"note: {note}")
        return 0
    handler = _log_file(Path(args.out))
    try:
        outcomes = run_suites(args.out, suites, args.preset, args.real_data, args.lfw, overrides, args.device)
    finally:
        logging.getLogger("synface").removeHandler(handler)
        handler.close()
    for outcome in outcomes:
        print(f"{outcome.name}: {outcome.seconds:.0f} s, {len(outcome.ran)} of {len(outcome.records)} steps run")
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


def _log_file(out: Path) -> logging.Handler:
    """Every log line of the run also goes to OUT/experiment.log."""
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "experiment.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    handler.setLevel(logging.INFO)
    logging.getLogger("synface").addHandler(handler)
    return handler
