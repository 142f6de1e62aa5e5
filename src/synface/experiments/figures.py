"""The paper's figures as suites: Fig. 3 (MDS and class variation), Fig. 5 (identity-mixup attack),
Fig. 6 (long tail) and Fig. 7 (facial attributes).

Like :mod:`synface.experiments.suites`, each builder returns steps and a ``collect``
that writes the figure (PNG, under ``OUT/figures``) and a table of the same numbers
with the published ones beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synface.config import ConfigBase, require
from synface.experiments.plan import Planner
from synface.experiments.report import (
    FIGURES_DIR,
    bar_chart,
    figure_section,
    percent,
    published,
    table_section,
    text_section,
)
from synface.experiments.runner import Runner, Step
from synface.experiments.spec import SuiteSpec
from synface.experiments.suites import (
    SuitePlan,
    accuracy,
    builder,
    chosen_tests,
    evaluations,
    settings_of,
)


# -- Fig. 3 -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fig3Variant(ConfigBase):
    """One of Syn1 / Syn2 / Syn3: a name and its identity-mixup setting."""

    name: str = "Syn1"
    phi_low: float = 1.0
    phi_high: float = 1.0
    phi_steps: int = 1

    def mixup(self) -> Any:
        """The planner's mixup setting for this variant."""
        if self.phi_steps == 1:
            return None if self.phi_low == 1.0 else self.phi_low
        return {"low": self.phi_low, "high": self.phi_high, "steps": self.phi_steps}


@dataclass(frozen=True)
class Fig3Settings(ConfigBase):
    """Fig. 3: which sets, how many classes, and which trained model embeds them."""

    variants: tuple[Fig3Variant, ...] = ()
    layout: str = "100_50"
    variation_classes: int = 100
    mds_classes: int = 2
    mds_samples: int = 50
    model: str = "auto"
    model_layout: str = "10K_50"
    real_classes: int = 50

    def validate(self) -> None:
        require(len(self.variants) > 0, "variants", "list at least one variant")
        require(self.model in ("auto", "real", "synthetic"), "model", f"{self.model!r} is not auto, real or synthetic")
        require(self.variation_classes >= 2 and self.mds_classes >= 1 and self.real_classes >= 2,
                "variation_classes", "need at least 2 classes per set")


@builder("fig3")
def build_fig3(spec: SuiteSpec, planner: Planner) -> SuitePlan:
    """MDS of Syn1/Syn2/Syn3 classes next to real faces, with intra/inter-class variation."""
    settings = settings_of(spec, Fig3Settings)
    use_real = settings.model == "real" or (settings.model == "auto" and planner.cfp is not None)
    if use_real:
        model = planner.train("RealFace (CFP training folds)", real=(0, 0))
        model_name = "RealFace (trained on CFP training folds)"
    else:
        data = planner.dataset(settings.model_layout, label=f"Syn_{settings.model_layout}")
        model = planner.train(f"SynFace (Syn_{settings.model_layout})", synthetic=data)
        model_name = f"SynFace (trained on Syn_{settings.model_layout})"
    groups, deps = [], [model]
    for variant in settings.variants:
        dataset = planner.dataset(settings.layout, variant.mixup(), label=f"{variant.name} {settings.layout}")
        deps.append(dataset)
        groups.append({"name": variant.name, "kind": "synthetic", "dataset": dataset.ref(),
                       "classes": settings.variation_classes})
    for kind in ("cfp", "lfw"):
        if getattr(planner, kind) is not None:
            files, images, align = planner.test_images(kind)
            deps += list(align)
            groups.append({"name": f"Real ({kind.upper()} test)", "kind": "real", "root": images, "files": files,
                           "classes": settings.real_classes})
            break
    step = Step("analyse", {"model": model.ref(), "groups": groups, "batch_size": planner.preset.evaluation.batch_size,
                            "mds": {"classes": settings.mds_classes, "samples": settings.mds_samples, "seed": 0}},
                deps=tuple(deps), label="embed Syn1/Syn2/Syn3 and real classes (MDS, class variation)")

    def collect(runner: Runner, out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        import shutil

        figures = out / FIGURES_DIR
        figures.mkdir(parents=True, exist_ok=True)
        for name in ("mds.png", "variation.png"):
            shutil.copyfile(runner.output(step) / name, figures / f"fig3_{name}")
        variation = runner.result(step)["variation"]
        header = ["Set", "classes", "samples", "intra-class (mean cos. dist. to centre)",
                  "inter-class (nearest centre)", "intra / nearest", "published accuracy"]
        paper = spec.published.get("accuracy", {})
        rows = [[name, v["classes"], v["samples"], f"{v['intra_mean']:.4f}", f"{v['nearest_centre_mean']:.4f}",
                 f"{v['intra_over_nearest']:.3f}", published(paper.get(name))] for name, v in variation.items()]
        sections = [figure_section(f"Fig. 3: MDS of {settings.mds_classes} classes per set, embedded by {model_name}",
                                   f"{FIGURES_DIR}/fig3_mds.png"),
                    table_section("Fig. 3: class variation in the embedding space", header, rows),
                    figure_section("Per-class intra-class variation and nearest-centre distance",
                                   f"{FIGURES_DIR}/fig3_variation.png"),
                    text_section("Syn1: no identity mixup; Syn2: phi = 0.8; Syn3: phi from linspace(0.6, 1, 11). "
                                 "The paper reports the accuracy of models trained on each (published column, "
                                 "5K_50, LFW); here the sets are compared by embedding variation.")]
        return sections, {"variation": variation, "model": model_name}

    return SuitePlan(spec, [step], collect)


# -- Fig. 5 -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fig5Settings(ConfigBase):
    """Fig. 5: attack ratios R and the synthetic (IM) training set."""

    ratios: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9)
    synthetic_layout: str = "10K_50"

    def validate(self) -> None:
        require(all(0.0 < r < 1.0 for r in self.ratios), "ratios", f"{list(self.ratios)} must lie in (0, 1)")


@builder("fig5")
def build_fig5(spec: SuiteSpec, planner: Planner) -> SuitePlan:
    """SynFace_IM vs RealFace on Syn-LFW-like and its identity-mixup attack sets Syn-LFW-R."""
    settings = settings_of(spec, Fig5Settings)
    synthetic = planner.dataset(settings.synthetic_layout, "im", label=f"Syn_{settings.synthetic_layout} (IM)")
    models = {"SynFace_IM": planner.train(f"Syn_{settings.synthetic_layout} (IM)", synthetic=synthetic)}
    if planner.cfp is not None:
        models["RealFace"] = planner.train("RealFace (CFP training folds)", real=(0, 0))
    tests = [planner.synthetic_test()] + [planner.synthetic_test(r) for r in settings.ratios]
    steps = evaluations(planner, models, tests)

    def collect(runner: Runner, out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        names = [t.name for t in tests]
        series = {key: [accuracy(runner, steps[(key, name)]) for name in names] for key in models}
        path = out / FIGURES_DIR / "fig5_attack.png"
        bar_chart(path, names, series, "Fig. 5: identity-mixup attack (label kept)")
        paper = spec.published.get("points", {})
        header = ["Model", *names, *[f"published {k}" for k in spec.published.get("columns", [])]]
        rows = [[key, *map(percent, values), *[published(v) for v in paper.get(key, [])]]
                for key, values in series.items()]
        sections = [figure_section("Fig. 5: accuracy on the Syn-LFW-like set and its attack sets Syn-LFW-R",
                                   f"{FIGURES_DIR}/fig5_attack.png"),
                    table_section("Fig. 5: verification accuracy (%)", header, rows),
                    text_section("Syn-LFW-R mixes every image's identity with a random other one at ratio R and "
                                 "keeps the original label. The paper gives only the R = 0.6 values in its text; "
                                 "the other points are in its figure.")]
        if "RealFace" not in models:
            sections.append(text_section("RealFace was not trained: no --real-data given."))
        return sections, {"accuracy": dict(zip(models, series.values())), "tests": names}

    return SuitePlan(spec, list(steps.values()), collect)


# -- Fig. 6 and Fig. 7 --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant(ConfigBase):
    """A named training set: a layout (name or explicit groups) and frozen factors."""

    name: str = ""
    layout: Any = "2K_50"
    frozen: tuple[str, ...] = ()


@dataclass(frozen=True)
class VariantSettings(ConfigBase):
    """Fig. 6 / Fig. 7: the variants, each trained with and without identity mixup."""

    variants: tuple[Variant, ...] = ()
    tests: str = "primary"

    def validate(self) -> None:
        require(len(self.variants) > 0, "variants", "list at least one variant")
        require(len({v.name for v in self.variants}) == len(self.variants), "variants", "names must be unique")
        require(self.tests in ("all", "primary"), "tests", f"{self.tests!r} is not one of all, primary")


def _build_variants(spec: SuiteSpec, planner: Planner, figure: str, title: str) -> SuitePlan:
    settings = settings_of(spec, VariantSettings)
    models: dict[str, Step] = {}
    for variant in settings.variants:
        for im in (False, True):
            suffix = " (IM)" if im else ""
            data = planner.dataset(variant.layout, "im" if im else None, tuple(variant.frozen),
                                   label=f"{variant.name}{suffix}")
            models[variant.name + suffix] = planner.train(f"{variant.name}{suffix}", synthetic=data)
    tests = chosen_tests(planner, settings.tests)
    steps = evaluations(planner, models, tests)
    paper = spec.published.get("points", {})

    def collect(runner: Runner, out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        names = [v.name for v in settings.variants]
        sections, raw = [], {}
        for test in tests:
            series = {label: [accuracy(runner, steps[(n + suffix, test.name)]) for n in names]
                      for label, suffix in (("w/o IM", ""), ("w/ IM", " (IM)"))}
            raw[test.name] = series
            file = f"{figure}_{test.name.lower().replace(' ', '_')}.png"
            bar_chart(out / FIGURES_DIR / file, names, series, f"{title} ({test.name})")
            rows = [[n, percent(series["w/o IM"][i]), percent(series["w/ IM"][i]),
                     *map(published, paper.get(n, [None, None]))] for i, n in enumerate(names)]
            sections += [figure_section(f"{title}: accuracy on {test.name}", f"{FIGURES_DIR}/{file}"),
                         table_section(f"{title}: verification accuracy (%) on {test.name}",
                                       ["Training set", "w/o IM", "w/ IM", "published LFW w/o IM",
                                        "published LFW w/ IM"], rows)]
        layouts = "; ".join(f"{v.name}: {_layout_text(v.layout)}" + (f", frozen {', '.join(v.frozen)}" if v.frozen else "")
                            for v in settings.variants)
        sections.append(text_section(f"Training sets: {layouts}. Published values not given in the paper's text "
                                     "are shown as –."))
        return sections, raw

    return SuitePlan(spec, list(steps.values()), collect)


def _layout_text(layout: Any) -> str:
    if isinstance(layout, dict):
        return f"groups of {list(layout.get('group_identities', []))} ids x {list(layout.get('group_samples', []))} samples"
    return str(layout)


@builder("fig6")
def build_fig6(spec: SuiteSpec, planner: Planner) -> SuitePlan:
    """Long tail: UB1, UB2 and balanced sets of equal size, with and without IM."""
    return _build_variants(spec, planner, "fig6", "Fig. 6: long-tailed training sets")


@builder("fig7")
def build_fig7(spec: SuiteSpec, planner: Planner) -> SuitePlan:
    """Facial attributes: Non / Expression / Pose / Illumination, with and without IM."""
    return _build_variants(spec, planner, "fig7", "Fig. 7: one factor of variation at a time")
