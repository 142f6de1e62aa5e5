"""Building the steps of a suite from a preset: datasets, real-data alignment, test sets, training and evaluation.

A :class:`Planner` turns high-level requests ("the 10K_50 set with identity mixup",
"a model trained on it", "its accuracy on CFP-FP") into cached
:class:`~synface.experiments.runner.Step` objects. Everything is validated while
planning (every generation and run config is built and checked, real folders are
inspected), so a bad setting fails before any work starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synface import __version__
from synface.errors import AssetError, ConfigError
from synface.experiments.realdata import (
    CFP_PROTOCOLS,
    RealSet,
    cfp_side_files,
    cfp_train_files,
    load_test_pairs,
    relative_images,
    resolve_align_method,
)
from synface.experiments.runner import Step
from synface.experiments.spec import Preset

logger = logging.getLogger(__name__)

SYNTHETIC_TEST = "Syn-LFW-like"
TEST_NAMES = {"cfp-ff": "CFP-FF", "cfp-fp": "CFP-FP", "lfw": "LFW"}


@dataclass(frozen=True)
class TestSet:
    """A verification set: display name, the ``test`` mapping evaluate steps get, the steps it needs."""

    name: str
    config: dict[str, Any]
    deps: tuple[Step, ...] = ()


def concrete_face_model(spec: str) -> tuple[str, str]:
    """The face model ``spec`` resolves to now, and a fingerprint that changes when the model does.

    Raises:
        AssetError: the named model is not imported or unreadable.
    """
    from synface.generate.registry import (
        BUILTIN_ALIASES,
        DEFAULT,
        ICT_NAME,
        describe_face_model,
        face_model_dir,
    )

    spec = spec.strip()
    if spec == DEFAULT:
        spec = ICT_NAME if (face_model_dir(ICT_NAME) / "model.json").is_file() else "builtin"
    if spec in BUILTIN_ALIASES:
        return "builtin", builtin_fingerprint()
    folder = face_model_dir(spec)
    folder = folder if (folder / "model.json").is_file() else Path(spec).expanduser()
    if not (folder / "model.json").is_file():
        raise AssetError(f"face model {spec!r} not found (not imported, and not a model folder)")
    info = describe_face_model(folder)
    return str(folder) if folder != face_model_dir(spec) else spec, str(info["content_hash"])


def builtin_fingerprint() -> str:
    """A hash of the code that builds the built-in head: it changes whenever the head could.

    Building the head to hash its tensors takes seconds; its code fixes it exactly.
    """
    import hashlib
    from importlib import resources

    digest = hashlib.sha256(__version__.encode())
    folder = resources.files("synface") / "generate"
    for name in sorted(p.name for p in folder.iterdir() if p.name.startswith("builtin_") and p.name.endswith(".py")):
        digest.update(name.encode())
        digest.update((folder / name).read_bytes())
    return f"builtin-head@{digest.hexdigest()[:16]}"


@dataclass
class Planner:
    """Makes the steps of suites for one preset and one set of real inputs.

    Args:
        preset: the scale.
        cfp: the CFP folder (real training identities and CFP-FF/FP tests), if given.
        lfw: the LFW folder (LFW test and the Syn-LFW statistics), if given.
    """

    preset: Preset
    cfp: RealSet | None = None
    lfw: RealSet | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.face_model, self.face_fingerprint = concrete_face_model(self.preset.generate.face_model)
        raw = [real for real in (self.cfp, self.lfw) if real is not None and real.state == "raw"]
        self.align_method = resolve_align_method(self.preset.real.align) if raw else None
        if self.align_method == "center":
            self.notes.append("Real photos were NOT aligned with MTCNN (its weights are not installed): they are "
                              "fixed centre crops, a smoke-test stand-in. Real-face numbers are not comparable to "
                              "published ones; run `synface assets install mtcnn` for real alignment.")
        self._cache: dict[str, Any] = {}

    # -- synthetic datasets ------------------------------------------------------------------
    def mixup(self, kind: str | float | None) -> dict[str, Any]:
        """Mixup settings: None/"none", "im" (the preset's grid), a float (fixed phi) or {"low","high","steps"}."""
        if kind in (None, "none"):
            return {"mode": "none"}
        if kind == "im":
            low, high, steps = self.preset.generate.im_grid
            return {"mode": "grid", "grid_low": low, "grid_high": high, "grid_steps": int(steps)}
        if isinstance(kind, dict):
            return {"mode": "grid", "grid_low": kind["low"], "grid_high": kind["high"], "grid_steps": int(kind["steps"])}
        return {"mode": "fixed", "phi": float(kind)}

    def generate_config(self, layout: Any, mixup: Any = None, frozen: tuple[str, ...] = (),
                        seed: int | None = None) -> dict[str, Any]:
        """A checked GenerateConfig mapping for the preset's renderer settings."""
        from synface.generate.sampling import GenerateConfig

        spec = self.preset.generate
        data: dict[str, Any] = {
            "seed": spec.seed if seed is None else seed, "face_model": self.face_model, "layout": layout,
            "mixup": self.mixup(mixup), "render": {"supersample": spec.supersample},
            "batch_size": spec.batch_size, "shard_size": spec.shard_size,
        }
        for factor in frozen:
            if factor not in ("expression", "pose", "light", "noise"):
                raise ConfigError(f"frozen: unknown factor {factor!r}; valid: expression, pose, light, noise")
            data[factor] = {"frozen": True}
        return GenerateConfig.from_dict(data).to_dict()

    def dataset(self, layout: Any, mixup: Any = None, frozen: tuple[str, ...] = (), label: str = "") -> Step:
        """The generate step of one training set."""
        config = self.generate_config(layout, mixup, frozen)
        return Step("generate", {"generate": config, "face_model": self.face_fingerprint},
                    label=label or f"generate {describe_layout(config['layout'])}")

    # -- real data ----------------------------------------------------------------------------
    def _align(self, real: RealSet, files: list[str], side_files: list[str], purpose: str) -> Step:
        return Step("align", {"source": str(real.root), "files": sorted(files), "side_files": side_files,
                              "method": self.align_method, "template": "synface"},
                    label=f"align {len(files)} {real.kind.upper()} photos ({purpose}, {self.align_method})")

    def real_train_files(self) -> list[str]:
        """Relative paths of the CFP training images the preset uses (training folds only)."""
        if "train_files" not in self._cache:
            real = self._require_cfp("real training")
            spec = self.preset.real
            self._cache["train_files"] = cfp_train_files(real, spec.test_folds, spec.train_identities,
                                                         spec.train_samples)
        return self._cache["train_files"]

    def real_train_source(self) -> tuple[str, tuple[Step, ...]]:
        """The folder real training reads (a reference to an aligned copy, or the user's aligned folder)."""
        real = self._require_cfp("real training")
        if real.state != "raw":
            return str(real.root), ()
        if "train_align" not in self._cache:
            self._cache["train_align"] = self._align(real, self.real_train_files(), cfp_side_files(real.root),
                                                     "training identities")
        step = self._cache["train_align"]
        return step.ref(), (step,)

    def real_train_counts(self) -> tuple[int, int]:
        """(identities, images) of the real training selection."""
        from synface.experiments.realdata import cfp_identity

        files = self.real_train_files()
        return len({cfp_identity(f) for f in files}), len(files)

    def _require_cfp(self, purpose: str) -> RealSet:
        if self.cfp is None:
            raise ConfigError(f"{purpose} needs CFP: pass --real-data CFP_DIR")
        return self.cfp

    # -- test sets ----------------------------------------------------------------------------
    def real_tests(self) -> list[TestSet]:
        """CFP-FF and CFP-FP on the held-out folds (when CFP is given) and LFW (when given)."""
        if "real_tests" in self._cache:
            return self._cache["real_tests"]
        tests = []
        per_fold = self.preset.evaluation.real_pairs_per_fold
        if self.cfp is not None:
            folds = list(self.preset.real.test_folds)
            tests += self._tests_of(self.cfp, list(CFP_PROTOCOLS), folds, per_fold)
        if self.lfw is not None:
            tests += self._tests_of(self.lfw, ["lfw"], None, per_fold)
        self._cache["real_tests"] = tests
        return tests

    def _tests_of(self, real: RealSet, protocols: list[str], folds: list[int] | None, per_fold: int) -> list[TestSet]:
        pair_sets = {name: load_test_pairs(real, name, folds, per_fold) for name in protocols}
        files = sorted({rel for pairs in pair_sets.values() for rel in relative_images(pairs, real.root)})
        deps: tuple[Step, ...] = ()
        images = str(real.root)
        if real.state == "raw":
            step = self._align(real, files, [], "test pairs")
            deps, images = (step,), step.ref()
        self._cache[f"test_files_{real.kind}"] = (files, images, deps)
        return [TestSet(TEST_NAMES[name], {
            "kind": "real", "name": TEST_NAMES[name], "protocol": name, "real_kind": real.kind,
            "root": str(real.root), "state": real.state, "pairs": str(real.pairs) if real.pairs else None,
            "folds": folds, "per_fold": per_fold, "images": images}, deps) for name in protocols]

    def test_images(self, kind: str) -> tuple[list[str], str, tuple[Step, ...]]:
        """(relative files, images root or reference, steps) of the ``cfp`` or ``lfw`` test photos."""
        self.real_tests()
        return self._cache[f"test_files_{kind}"]

    def statistics(self) -> Step | None:
        """The step measuring Syn-LFW statistics (LFW first, else CFP test photos), or None for the defaults."""
        if "statistics" in self._cache:
            return self._cache["statistics"]
        step = None
        for real in (self.lfw, self.cfp):
            if real is None or real.state == "prealigned" or (real.state == "raw" and self.align_method != "mtcnn"):
                continue
            files, images, deps = self.test_images(real.kind)
            if real.state == "aligned":
                files = []  # every photo the user aligned, as the paper copies all of LFW
            spec = self.preset.synlfw
            step = Step("statistics", {
                "aligned": images, "files": files, "max_identities": spec.max_identities,
                "expression_candidates": spec.expression_candidates, "light_candidates": spec.light_candidates,
                "seed": spec.seed, "face_model": self.face_model, "face_fingerprint": self.face_fingerprint,
                "render": {"supersample": self.preset.generate.supersample}},
                deps=deps, label=f"measure pose/expression/light of {real.kind.upper()} test photos")
            self.notes.append(f"Syn-LFW-like sets follow pose, mouth and light statistics measured on the "
                              f"{real.kind.upper()} test photos (MTCNN landmarks; see synface.experiments.synlfw).")
            break
        if step is None:
            self.notes.append("Syn-LFW-like sets use the generator's LFW-like default pose/expression/light "
                              "distributions: no real set with MTCNN landmarks was given.")
        self._cache["statistics"] = step
        return step

    def synthetic_test(self, attack_ratio: float | None = None) -> TestSet:
        """The Syn-LFW-like set, or its identity-mixup attack version Syn-LFW-R (label kept)."""
        spec, evaluation = self.preset.synlfw, self.preset.evaluation
        statistics = self.statistics()
        generate = self.generate_config(spec.layout, seed=spec.seed)
        if attack_ratio is not None:
            generate["mixup"] = {**generate["mixup"], "mode": "attack", "phi": float(attack_ratio)}
        if statistics is not None:
            generate.pop("layout")
        name = SYNTHETIC_TEST if attack_ratio is None else f"Syn-LFW-R{attack_ratio:g}"
        step = Step("synlfw", {"generate": generate, "statistics": statistics.ref() if statistics else None,
                               "face_model": self.face_fingerprint},
                    deps=(statistics,) if statistics else (), label=f"generate {name}")
        return TestSet(name, {"kind": "synthetic", "name": name, "dataset": step.ref(),
                              "num_pairs": evaluation.syn_pairs, "num_folds": evaluation.syn_folds,
                              "seed": evaluation.pair_seed}, (step,))

    def tests(self) -> list[TestSet]:
        """Every standard test set: the real ones, then the Syn-LFW-like set."""
        return [*self.real_tests(), self.synthetic_test()]

    def primary_test(self) -> str:
        """The headline test of single-number tables: LFW, else CFP-FF, else the Syn-LFW-like set."""
        names = [test.name for test in self.real_tests()]
        return "LFW" if "LFW" in names else "CFP-FF" if "CFP-FF" in names else SYNTHETIC_TEST

    # -- training and evaluation -----------------------------------------------------------------
    def train(self, label: str, synthetic: Step | None = None, subset: tuple[int, int] | None = None,
              real: tuple[int, int] | None = None, mix: tuple[int, int] | None = None) -> Step:
        """A training step on a synthetic set (optionally its N_S subset), on real CFP, or both by domain mixup.

        Args:
            label: description for logs.
            synthetic: the generate step of the synthetic training set.
            subset: train on the first (N, S) of ``synthetic`` (exact for sets without mixup).
            real: train on real CFP alone: (N, S), or (0, 0) for the whole training selection.
            mix: blend (N, S) real CFP identities into ``synthetic`` by domain mixup.
        """
        from synface.train import RunConfig

        preset, spec = self.preset, self.preset.train
        data: dict[str, Any] = {"image_size": [112, 96], "augmentation": spec.augmentation, "workers": 0,
                                "seed": spec.seed, "cfp_test_folds": list(preset.real.test_folds)}
        deps: list[Step] = []
        if synthetic is not None:
            data.update(kind="synthetic", path=synthetic.ref())
            deps.append(synthetic)
            images = _dataset_images(synthetic, subset)
            if subset:
                data.update(num_identities=subset[0], samples_per_identity=subset[1])
        else:
            data.update(kind="cfp", path="")
        if real is not None or mix is not None:
            path, align = self.real_train_source()
            deps += list(align)
            counts = real if real is not None else mix
            self._check_real_subset(counts)
        if real is not None:
            if not real[0]:  # the preset's whole real training selection
                real = (preset.real.train_identities, preset.real.train_samples)
            data.update(kind="cfp", path=path, num_identities=real[0], samples_per_identity=real[1])
            images = real[0] * real[1] if real[0] else self.real_train_counts()[1]
        elif synthetic is None:
            raise ConfigError(f"train {label}: give a synthetic set, real data, or both")
        if mix is not None:
            data["domain_mixup"] = {"kind": "cfp", "path": path, "num_identities": mix[0],
                                    "samples_per_identity": mix[1]}
        data["batch_size"] = _batch(spec.batch_size, images, preset.launcher.nproc_per_node)
        run = {"data": data, "model": preset.model.to_dict(),
               "head": {"name": spec.head, "s": spec.s, "m": spec.m},
               "train": {"epochs": spec.epochs, "lr": spec.lr, "lr_reference_batch": spec.lr_reference_batch,
                         "milestones": list(spec.milestones), "warmup_epochs": spec.warmup_epochs,
                         "precision": spec.precision, "channels_last": spec.channels_last, "seed": spec.seed,
                         "log_interval": 20}}
        RunConfig.from_dict(run)  # checked now, not after hours of generation
        runtime = {"nproc_per_node": preset.launcher.nproc_per_node, "launcher": preset.launcher.command,
                   "workers": spec.workers}
        return Step("train", {"run": run}, deps=tuple(deps), label=f"train {label}", runtime=runtime)

    def _check_real_subset(self, counts: tuple[int, int]) -> None:
        identities, _ = self.real_train_counts()
        spec = self.preset.real
        if counts[0] and (counts[0] > identities or (spec.train_samples and counts[1] > spec.train_samples)):
            raise ConfigError(f"real subset {counts[0]}_{counts[1]} exceeds the preset's real training selection "
                              f"(real.train_identities={spec.train_identities or identities}, "
                              f"real.train_samples={spec.train_samples or 'all'})")

    def evaluate(self, model: Step, test: TestSet) -> Step:
        """An evaluate step of ``model`` on ``test``."""
        evaluation = self.preset.evaluation
        return Step("evaluate", {"model": model.ref(), "test": test.config, "rules": list(evaluation.rules),
                                 "batch_size": evaluation.batch_size},
                    deps=(model, *test.deps), label=f"evaluate on {test.name}: {model.label.removeprefix('train ')}")


def describe_layout(layout: dict[str, Any]) -> str:
    """``10K_50``-style name of a layout mapping (or its groups)."""
    return layout.get("name") or f"groups {list(layout['group_identities'])} x {list(layout['group_samples'])}"


def _dataset_images(step: Step, subset: tuple[int, int] | None) -> int:
    from synface.generate.layout import LayoutConfig

    if subset:
        return subset[0] * subset[1]
    return LayoutConfig.from_dict(step.config["generate"]["layout"]).resolve().num_samples


def _batch(batch: int, images: int, nproc: int) -> int:
    """The preset batch, shrunk to fit a small training set, divisible by the process count."""
    size = min(batch, images)
    size -= size % nproc
    if size < max(2, nproc):
        raise ConfigError(f"a training set of {images} images is too small for batch norm with "
                          f"{nproc} process(es); use a larger layout")
    return size

