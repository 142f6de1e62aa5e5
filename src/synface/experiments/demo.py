"""`synface demo`: the whole pipeline at laptop scale, in minutes on a 2-core CPU.

Generates a small synthetic dataset with the default face model (with and without
identity mixup), trains the small backbone on each, evaluates both on held-out
synthetic pairs (a Syn-LFW-like set of new identities) and, when given, on CFP
(held-out folds) and LFW, then writes ``OUT/report.md`` with a preview grid and
an identity-mixup strip, the accuracy table and an MDS plot. Every step is cached
like the suites', so a re-run is instant and a killed demo resumes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synface.config import ConfigBase, require
from synface.experiments.plan import Planner
from synface.experiments.realdata import (
    RealSet,
    inspect_cfp,
    inspect_lfw,
    mtcnn_installed,
)
from synface.experiments.report import (
    FIGURES_DIR,
    figure_section,
    percent,
    table_section,
    text_section,
    write_report,
)
from synface.experiments.run import save_suite_results
from synface.experiments.runner import Runner, Step
from synface.experiments.spec import SuiteSpec, load_preset
from synface.experiments.suites import SuitePlan, accuracy, evaluations

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig(ConfigBase):
    """Sizes of the demo (the defaults fit in about 10 minutes on a 2-core CPU).

    Attributes:
        identities, samples: the training set (N identities x S samples).
        test_identities, test_samples: the held-out synthetic test set (new identities).
        epochs, batch_size: training of each of the two models (lr 0.1 per 512 images, scaled
            linearly to the batch as in the paper's recipe).
        pairs: synthetic test pairs (10 folds).
        real_pairs_per_fold: CFP / LFW pairs kept per fold and kind (0: all).
        model: the backbone.
    """

    identities: int = 100
    samples: int = 8
    test_identities: int = 50
    test_samples: int = 4
    epochs: int = 5
    batch_size: int = 32
    pairs: int = 400
    real_pairs_per_fold: int = 10
    model: str = "iresnet_tiny"

    def validate(self) -> None:
        require(self.identities >= 2 and self.samples >= 1, "identities", "need at least 2 identities x 1 sample")
        require(self.test_identities >= 20 and self.test_samples >= 2, "test_identities",
                "the test set needs at least 20 identities (10 folds) x 2 samples")
        require(self.epochs >= 1 and self.batch_size >= 2, "epochs", "need epochs >= 1 and batch_size >= 2")
        require(self.pairs > 0 and self.pairs % 20 == 0, "pairs", f"{self.pairs} must be a positive multiple of 20")


def demo_preset(config: DemoConfig, align: str) -> Any:
    """The ``tiny`` preset resized to the demo's settings."""
    return load_preset("tiny", [
        f"model.name={config.model}", "model.num_features=128",
        f"train.epochs={config.epochs}", f"train.batch_size={config.batch_size}",
        "evaluation.syn_folds=10", f"evaluation.syn_pairs={config.pairs}",
        f"evaluation.real_pairs_per_fold={config.real_pairs_per_fold}",
        f"real.align={align}", f"synlfw.layout='{config.test_identities}_{config.test_samples}'",
        f"synlfw.max_identities={config.test_identities}", "synlfw.expression_candidates=64",
        "synlfw.light_candidates=16",
    ])


def _usable(real: RealSet | None, notes: list[str]) -> RealSet | None:
    """A real set the demo can use now: raw photos need MTCNN, else they are skipped with a note."""
    if real is None or real.state != "raw" or mtcnn_installed():
        return real
    notes.append(f"{real.kind.upper()} was skipped: its photos need MTCNN alignment and the detector's weights are "
                 "not installed. Run `synface assets install mtcnn` (or `synface align` the folder yourself) and "
                 "re-run the demo.")
    return None


def plan_demo(config: DemoConfig, cfp: str | Path | None = None, lfw: str | Path | None = None) -> tuple[Planner, SuitePlan]:
    """Validate and plan the demo (nothing runs)."""
    notes: list[str] = []
    cfp_set = _usable(inspect_cfp(cfp) if cfp else None, notes)
    lfw_set = _usable(inspect_lfw(lfw) if lfw else None, notes)
    planner = Planner(demo_preset(config, "mtcnn" if mtcnn_installed() else "center"), cfp=cfp_set, lfw=lfw_set)
    planner.notes[:0] = notes
    layout = f"{config.identities}_{config.samples}"
    datasets = {"w/o IM": planner.dataset(layout, label=f"Syn_{layout}"),
                "w/ IM": planner.dataset(layout, "im", label=f"Syn_{layout} (IM)")}
    models = {key: planner.train(f"iresnet_tiny on Syn_{layout} {key}", synthetic=data)
              for key, data in datasets.items()}
    tests = planner.tests()
    steps = evaluations(planner, models, tests)
    synthetic_test = tests[-1]
    groups = [{"name": "Syn-LFW-like (test)", "kind": "synthetic", "dataset": synthetic_test.config["dataset"],
               "classes": 10},
              {"name": "training set (w/ IM)", "kind": "synthetic", "dataset": datasets["w/ IM"].ref(),
               "classes": 10}]
    analyse = Step("analyse", {"model": models["w/ IM"].ref(), "groups": groups,
                               "batch_size": planner.preset.evaluation.batch_size,
                               "mds": {"classes": 4, "samples": config.test_samples * 4, "seed": 0}},
                   deps=(models["w/ IM"], datasets["w/ IM"], *synthetic_test.deps),
                   label="embed test and training classes (MDS)")
    spec = SuiteSpec("demo", "synface demo: generate, train with and without identity mixup, evaluate", "demo",
                     f"{layout} synthetic training set rendered with the default face model, "
                     f"{config.model} trained {config.epochs} epoch(s) on it with and without identity mixup, "
                     f"tested on {config.test_identities} new synthetic identities and any real set given.",
                     {}, config.to_dict())

    def collect(runner: Runner, out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        figures = out / FIGURES_DIR
        figures.mkdir(parents=True, exist_ok=True)
        write_demo_preview(runner.output(datasets["w/ IM"]), runner.output(datasets["w/o IM"]),
                           figures / "demo_preview.png", planner.generate_config(layout, "im"))
        import shutil

        shutil.copyfile(runner.output(analyse) / "mds.png", figures / "demo_mds.png")
        names = [t.name for t in tests]
        raw = {key: {name: accuracy(runner, steps[(key, name)]) for name in names} for key in models}
        rows = [[f"{config.model} on Syn_{layout} {key}", *[percent(raw[key][n]) for n in names]] for key in models]
        sections = [figure_section("Training identities (rows) and their samples, then one identity blended into "
                                   "another by identity mixup (phi 0 -> 1)", f"{FIGURES_DIR}/demo_preview.png"),
                    table_section("Verification accuracy (%)", ["Model", *names], rows),
                    figure_section("MDS of test and training classes, embedded by the model trained with IM",
                                   f"{FIGURES_DIR}/demo_mds.png"),
                    text_section("At this size (a few thousand training images seen a few times on a CPU) "
                                 "accuracies sit not far above chance (50%) and differ by noise; --identities, "
                                 "--samples, --epochs and a GPU raise them. `synface experiment --list` shows the "
                                 "paper's experiments at larger presets.")]
        return sections, {"accuracy": raw, "tests": names}

    return planner, SuitePlan(spec, [*steps.values(), analyse], collect)


def write_demo_preview(mixed: Path, plain: Path, path: Path, generate: dict[str, Any],
                       identities: int = 4, samples: int = 6) -> Path:
    """The preview grid from the generated images (no re-rendering) plus one rendered mixup strip."""
    from synface.data.synthetic import SyntheticDataset
    from synface.generate.generator import FaceGenerator
    from synface.generate.preview import mixup_strip, stack, tile, write_png
    from synface.generate.sampling import GenerateConfig

    dataset = SyntheticDataset(plain)
    identities = min(identities, int(dataset.identity.max()) + 1)
    samples = min(samples, int(dataset.sample_index.max()) + 1)
    rows = np.flatnonzero((dataset.identity < identities) & (dataset.sample_index < samples))
    images, _, _ = dataset.get_batch(rows)
    per_row = len(rows) // identities
    grid = tile(images.permute(0, 2, 3, 1).contiguous().numpy(), identities, per_row)
    with FaceGenerator(GenerateConfig.from_dict(generate)) as generator:
        strip = mixup_strip(generator, 0, 1, steps=per_row + 3)
    return write_png(stack([grid, strip]), path)


def run_demo(out: str | Path, config: DemoConfig = DemoConfig(), cfp: str | Path | None = None,
             lfw: str | Path | None = None, device: str = "auto") -> dict[str, Any]:
    """Run the demo into ``out`` (resumable) and write ``out/report.md``.

    Returns:
        ``seconds`` (wall time), ``report`` (path), ``accuracy`` ({model: {test: accuracy}}), ``notes``.
    """
    started = time.perf_counter()
    planner, plan = plan_demo(config, cfp, lfw)
    runner = Runner(out, device)
    records = runner.run(plan.steps)
    sections, raw = plan.collect(runner, Path(out))
    seconds = time.perf_counter() - started
    save_suite_results(Path(out), plan, planner, sections, raw, records, seconds)
    report = write_report(out)
    return {"seconds": seconds, "report": str(report), "accuracy": raw["accuracy"], "notes": list(planner.notes),
            "steps_ran": sum(r.status == "ran" for r in records)}
