"""The paper's tables as suites: Table 1 (cross-domain), Table 2 (domain mixup), Table 3 (width x depth).

Each builder turns a suite's YAML settings (one typed dataclass per suite) into
steps through a :class:`~synface.experiments.plan.Planner`, and returns a
:class:`SuitePlan` whose ``collect`` reads the finished steps back into report
sections laid out like the paper's tables, with the published numbers beside ours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synface.config import ConfigBase, require
from synface.errors import ConfigError
from synface.experiments.plan import SYNTHETIC_TEST, Planner, TestSet
from synface.experiments.report import percent, published, table_section, text_section
from synface.experiments.runner import Runner, Step
from synface.experiments.spec import SuiteSpec

Collect = Callable[[Runner, Path], tuple[list[dict[str, Any]], dict[str, Any]]]
BUILDERS: dict[str, Callable[[SuiteSpec, Planner], SuitePlan]] = {}


@dataclass
class SuitePlan:
    """The steps of one suite and how to turn their results into report sections."""

    spec: SuiteSpec
    steps: list[Step]
    collect: Collect


def builder(name: str) -> Callable[[Callable[[SuiteSpec, Planner], SuitePlan]], Callable[[SuiteSpec, Planner], SuitePlan]]:
    """Register a suite builder under the ``builder:`` name suites use in YAML."""

    def decorator(function: Callable[[SuiteSpec, Planner], SuitePlan]) -> Callable[[SuiteSpec, Planner], SuitePlan]:
        BUILDERS[name] = function
        return function

    return decorator


def settings_of(spec: SuiteSpec, cls: type[ConfigBase]) -> Any:
    """The suite's settings as its typed dataclass (unknown or bad keys raise, naming the suite)."""
    try:
        return cls.from_dict(spec.settings)
    except ConfigError as error:
        raise ConfigError(f"suite {spec.name}: {error}") from None


def accuracy(runner: Runner, step: Step) -> float | None:
    """The headline accuracy (first rule) an evaluate step recorded."""
    results = runner.result(step)["results"]
    return next(iter(results.values()))["accuracy"] if results else None


def evaluations(planner: Planner, models: dict[str, Step], tests: list[TestSet]) -> dict[tuple[str, str], Step]:
    """Evaluate steps of every model on every test, keyed by (model key, test name)."""
    return {(key, test.name): planner.evaluate(model, test) for key, model in models.items() for test in tests}


def chosen_tests(planner: Planner, which: str) -> list[TestSet]:
    """``all`` test sets, or only the ``primary`` one (the paper reports LFW alone in most tables)."""
    tests = planner.tests()
    if which == "all":
        return tests
    primary = planner.primary_test()
    return [test for test in tests if test.name == primary]


# -- Table 1 ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table1Settings(ConfigBase):
    """Table 1: the synthetic training set (no identity mixup) of SynFace."""

    synthetic_layout: str = "10K_50"


@builder("table1")
def build_table1(spec: SuiteSpec, planner: Planner) -> SuitePlan:
    """SynFace vs RealFace, each tested on real and synthetic pairs."""
    settings = settings_of(spec, Table1Settings)
    if planner.cfp is None:
        raise ConfigError("suite table1 needs --real-data CFP_DIR: RealFace is trained on CFP's training folds")
    synthetic = planner.dataset(settings.synthetic_layout, label=f"Syn_{settings.synthetic_layout}")
    identities, images = planner.real_train_counts()
    models = {"RealFace": planner.train("RealFace (CFP training folds)", real=(0, 0)),
              "SynFace": planner.train(f"SynFace (Syn_{settings.synthetic_layout})", synthetic=synthetic)}
    training = {"RealFace": f"CFP training folds ({identities} ids, {images} images)",
                "SynFace": f"Syn_{settings.synthetic_layout}"}
    tests = planner.tests()
    steps = evaluations(planner, models, tests)
    paper = spec.published.get("rows", {})

    def collect(runner: Runner, out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        names = [t.name for t in tests]
        header = ["Method", "Training dataset", *names, *[f"published {c}" for c in spec.published["columns"]]]
        rows, raw = [], {}
        for (key, label), published_row in zip(models.items(), paper.values()):
            values = {name: accuracy(runner, steps[(key, name)]) for name in names}
            raw[key] = values
            rows.append([key, training[key], *[percent(values[n]) for n in names], *map(published, published_row)])
        sections = [table_section("Table 1: verification accuracy (%)", header, rows),
                    text_section(f"Published rows: {', '.join(paper)}. {SYNTHETIC_TEST} is our synthetic test set "
                                 "(see the Syn-LFW-like section below); the paper's Syn-LFW copies LFW with a 3D "
                                 "reconstruction network.")]
        return sections, {"accuracy": raw, "tests": names}

    return SuitePlan(spec, list(steps.values()), collect)


# -- Table 2 ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RealRow(ConfigBase):
    """One Real_N_S / Mix_N_S pair of rows: our N and S, and the paper's row it stands for."""

    paper: str = "1K_10"
    identities: int = 1000
    samples: int = 10

    def validate(self) -> None:
        require(self.identities > 0 and self.samples > 0, "identities", "N and S must be positive")


@dataclass(frozen=True)
class Table2Settings(ConfigBase):
    """Table 2: Syn only (with IM), Real_N_S and Mix_N_S (IM + domain mixup)."""

    synthetic_layout: str = "10K_50"
    real: tuple[RealRow, ...] = ()
    tests: str = "all"

    def validate(self) -> None:
        require(len(self.real) > 0, "real", "list at least one {paper, identities, samples} row")
        require(self.tests in ("all", "primary"), "tests", f"{self.tests!r} is not one of all, primary")


@builder("table2")
def build_table2(spec: SuiteSpec, planner: Planner) -> SuitePlan:
    """Domain mixup: a few real identities blended into the synthetic set."""
    settings = settings_of(spec, Table2Settings)
    if planner.cfp is None:
        raise ConfigError("suite table2 needs --real-data CFP_DIR: the real identities come from CFP's training folds")
    synthetic = planner.dataset(settings.synthetic_layout, "im", label=f"Syn_{settings.synthetic_layout} (IM)")
    layout = settings.synthetic_layout
    models = {f"Syn_{layout}": planner.train(f"Syn_{layout} (IM)", synthetic=synthetic)}
    info = {f"Syn_{layout}": (0, 0, "Syn_10K_50")}
    for row in settings.real:
        name = f"{row.identities}_{row.samples}"
        models[f"Real_{name}"] = planner.train(f"Real_{name} (CFP)", real=(row.identities, row.samples))
        models[f"Mix_{name}"] = planner.train(f"Mix_{name} (Syn_{layout} IM + DM)", synthetic=synthetic,
                                              mix=(row.identities, row.samples))
        info[f"Real_{name}"] = (row.identities, row.samples, f"Real_{row.paper}")
        info[f"Mix_{name}"] = (row.identities, row.samples, f"Mix_{row.paper}")
    tests = chosen_tests(planner, settings.tests)
    steps = evaluations(planner, models, tests)
    paper = spec.published.get("rows", {})

    def collect(runner: Runner, out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        names = [t.name for t in tests]
        header = ["Method", "R_ID", "Samples per R_ID", *names, "paper row", "published LFW"]
        rows, raw = [], {}
        for key in models:
            values = {name: accuracy(runner, steps[(key, name)]) for name in names}
            identities, samples, paper_row = info[key]
            raw[key] = values
            rows.append([key, identities, samples, *[percent(values[n]) for n in names], paper_row,
                         published(paper.get(paper_row))])
        extra = {k: v for k, v in paper.items() if k not in {info[m][2] for m in models}}
        notes = [text_section("Every synthetic set here uses identity mixup; Mix rows add domain mixup (one ratio "
                              "per batch from linspace(0, 1, 21)) with N real CFP training-fold identities x S "
                              "images. The paper's real set is CASIA-WebFace (first 1K/2K identities).")]
        if extra:
            listed = ", ".join(f"{k} {published(v)}" for k, v in extra.items())
            notes.append(text_section(f"Further published rows: {listed}"))
        return [table_section("Table 2: verification accuracy (%)", header, rows), *notes], {"accuracy": raw}

    return SuitePlan(spec, list(steps.values()), collect)


# -- Table 3 ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table3Settings(ConfigBase):
    """Table 3: rows (a)..(i) as layouts for this preset, the paper's names and numbers beside them."""

    labels: tuple[str, ...] = ()
    paper_layouts: tuple[str, ...] = ()
    layouts: tuple[str, ...] = ()
    tests: str = "primary"

    def validate(self) -> None:
        require(len(self.labels) == len(self.paper_layouts) == len(self.layouts) > 0, "layouts",
                f"labels ({len(self.labels)}), paper_layouts ({len(self.paper_layouts)}) and layouts "
                f"({len(self.layouts)}) must have the same positive length")
        require(self.tests in ("all", "primary"), "tests", f"{self.tests!r} is not one of all, primary")


def superset_subsets(planner: Planner, layouts: tuple[str, ...]) -> dict[str, tuple[Step, tuple[int, int]]]:
    """No-mixup sets as the first N x S of one generated superset (identical images: samples are pure
    functions of (seed, identity, sample)), so 9 rows cost one dataset."""
    from synface.generate.layout import parse_layout_name

    sizes = {}
    for layout in layouts:
        groups = parse_layout_name(layout)
        if len(groups[0]) != 1:
            raise ConfigError(f"table3 layout {layout!r}: expected N_S")
        sizes[layout] = (groups[0][0], groups[1][0])
    width = max(n for n, _ in sizes.values())
    depth = max(s for _, s in sizes.values())
    superset = planner.dataset(f"{width}_{depth}", label=f"Syn_{width}_{depth} (superset of the no-IM rows)")
    return {layout: (superset, size) for layout, size in sizes.items()}


@builder("table3")
def build_table3(spec: SuiteSpec, planner: Planner) -> SuitePlan:
    """Width x depth, each with and without identity mixup."""
    settings = settings_of(spec, Table3Settings)
    plain = superset_subsets(planner, settings.layouts)
    models: dict[str, Step] = {}
    for label, layout in zip(settings.labels, settings.layouts):
        superset, size = plain[layout]
        models[f"{label}"] = planner.train(f"{label} {layout}", synthetic=superset, subset=size)
        mixed = planner.dataset(layout, "im", label=f"Syn_{layout} (IM)")
        models[f"{label} IM"] = planner.train(f"{label} {layout} (IM)", synthetic=mixed)
    tests = chosen_tests(planner, settings.tests)
    steps = evaluations(planner, models, tests)
    paper = spec.published.get("rows", {})

    def collect(runner: Runner, out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        sections, raw = [], {}
        for test in tests:
            header = ["Method", "ID", "Samples", test.name, f"{test.name} (w/ IM)", "paper row",
                      "published LFW", "published LFW (w/ IM)"]
            rows = []
            for label, layout, paper_layout in zip(settings.labels, settings.layouts, settings.paper_layouts):
                ids, samples = plain[layout][1]
                without = accuracy(runner, steps[(label, test.name)])
                with_im = accuracy(runner, steps[(f"{label} IM", test.name)])
                raw.setdefault(test.name, {})[label] = {"layout": layout, "accuracy": without, "accuracy_im": with_im}
                numbers = paper.get(label, [None, None])
                rows.append([f"{label} {layout}", ids, samples, percent(without), percent(with_im),
                             f"{label} {paper_layout}", *map(published, numbers)])
            sections.append(table_section(f"Table 3: verification accuracy (%) on {test.name}", header, rows))
        sections.append(text_section("Rows without identity mixup train on the first N identities x S samples of "
                                     "one generated set (the same images a separate N_S generation renders); "
                                     "rows with identity mixup are generated separately, so every mixup partner "
                                     "is a class of the set."))
        return sections, raw

    return SuitePlan(spec, list(steps.values()), collect)
