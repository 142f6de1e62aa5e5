"""Executors of the model steps: train (in process or under torchrun), evaluate on a pair set, analyse embeddings.

Training always runs with ``train.resume=true`` in the step's ``run/`` folder, so a
killed step continues from its last checkpoint. Evaluation reports the last
epoch's model on a test set; nothing is ever selected on a test set.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from synface.errors import DataError, SynfaceError
from synface.experiments.exec_data import read_rgb, resolve_device
from synface.experiments.runner import StepContext, register_executor
from synface.io import atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)



def torchrun_command(launcher: str, nproc: int, config_path: Path) -> list[str]:
    """The command that trains ``config_path`` data-parallel on ``nproc`` processes."""
    return [launcher, "--nproc_per_node", str(nproc), "-m", "synface.cli", "train", str(config_path), "--resume"]


@register_executor("train")
def run_train(context: StepContext) -> dict[str, Any]:
    """Train ``config.run`` (a RunConfig mapping) into ``run/``, resuming a killed run."""
    from synface.train import RunConfig, fit
    from synface.train.checkpoints import latest_checkpoint, read_progress

    runtime = context.step.runtime
    nproc = int(runtime.get("nproc_per_node", 1))
    data = yaml.safe_load(yaml.safe_dump(context.config["run"]))  # a deep, plain copy
    data["train"].update(output_dir=str(context.output), resume=True, tensorboard=False,
                         device=context.device if nproc == 1 else "auto")
    data["data"]["workers"] = int(runtime.get("workers", data["data"].get("workers", 0)))
    if nproc > 1:
        data["data"]["batch_size"] //= nproc  # the config holds the global batch
        config_path = context.folder / "run-config.yaml"
        atomic_write_text(config_path, yaml.safe_dump(data, sort_keys=False))
        command = torchrun_command(str(runtime.get("launcher", "torchrun")), nproc, config_path)
        logger.info("training under torchrun: %s", shlex.join(command))
        completed = subprocess.run(command, check=False)
        if completed.returncode != 0:
            raise SynfaceError(f"training step {context.step.id} failed under torchrun (exit {completed.returncode}); "
                               f"command: {shlex.join(command)}")
    else:
        fit(RunConfig.from_dict(data))
    checkpoint = latest_checkpoint(context.output)
    if checkpoint is None:
        raise SynfaceError(f"{context.output}: training finished without a checkpoint")
    record = read_progress(checkpoint)
    metrics = {k: v for k, v in record.get("metrics", {}).items() if k.startswith("train/")}
    return {"checkpoint": checkpoint.relative_to(context.folder).as_posix(), "epochs": record.get("epoch"),
            "num_classes": record.get("num_classes"), "metrics": metrics}


def load_trained(run_dir: str | Path, device: torch.device) -> torch.nn.Module:
    """The last checkpoint's backbone of a training step's run folder, in eval mode."""
    from synface.checkpoint import load_model
    from synface.train.checkpoints import resolve_checkpoint

    model, _ = load_model(resolve_checkpoint(run_dir), device)
    return model


def _synthetic_pairs(test: dict[str, Any]) -> Any:
    """The synthetic protocol's pairs; a set too small for the pairs asked gets the most that fit, halving."""
    from synface.eval.protocols import load_protocol

    pairs, folds = int(test["num_pairs"]), int(test["num_folds"])
    manifest = json.loads((Path(test["dataset"]) / "dataset.json").read_text(encoding="utf-8"))
    if manifest["num_identities"] < 2 * folds:  # folds are identity-disjoint: a small set gets fewer
        folds = max(2, manifest["num_identities"] // 2)
        logger.warning("%s: %d identities; using %d folds", test["dataset"], manifest["num_identities"], folds)
        pairs = max(pairs // (2 * folds), 1) * 2 * folds
    while True:
        try:
            return load_protocol("synthetic", test["dataset"], num_pairs=pairs, num_folds=folds,
                                 seed=int(test["seed"]))
        except DataError as error:
            smaller = (pairs // 2) // (2 * folds) * (2 * folds)
            if smaller < 2 * folds:
                raise
            logger.warning("%s; using %d pairs instead of %d", error, smaller, pairs)
            pairs = smaller


_PAIR_SETS: dict[str, Any] = {}  # pair sets built in this process: every model of a suite meets the same tests


def build_test_pairs(test: dict[str, Any]) -> Any:
    """The pair set an evaluate step's ``test`` mapping describes (synthetic or real), built once per process."""
    key = json.dumps(test, sort_keys=True)
    if key not in _PAIR_SETS:
        _PAIR_SETS[key] = _build_test_pairs(test)
    return _PAIR_SETS[key]


def _build_test_pairs(test: dict[str, Any]) -> Any:
    if test["kind"] == "synthetic":
        pair_set = _synthetic_pairs(test)
        from synface.eval.protocols import PairSet

        return PairSet(test["name"], pair_set.images, pair_set.pairs, pair_set.issame, pair_set.folds,
                       source=pair_set.source, image_names=pair_set.image_names)
    from synface.experiments.realdata import RealSet, load_test_pairs, rebase_pairs

    real = RealSet(test["real_kind"], Path(test["root"]), test["state"],
                   Path(test["pairs"]) if test.get("pairs") else None)
    pair_set = load_test_pairs(real, test["protocol"], test.get("folds"), int(test.get("per_fold", 0)))
    return rebase_pairs(pair_set, real.root, Path(test["images"]))


def _crop_for(model: torch.nn.Module, pair_set: Any) -> str | None:
    """``synface`` when 112x112 ArcFace crops meet a 112x96 model, else None."""
    from synface.eval.embed import decode_image

    first = decode_image(pair_set.images[0], pair_set.describe_image(0))
    size = tuple(getattr(model, "input_size", first.shape[:2]))
    return "synface" if first.shape[:2] == (112, 112) and size == (112, 96) else None


@register_executor("evaluate")
def run_evaluate(context: StepContext) -> dict[str, Any]:
    """Verification accuracy of the last checkpoint of ``config.model`` on ``config.test``."""
    from synface.eval.report import evaluate_model

    config, device = context.config, resolve_device(context.device)
    model = load_trained(config["model"], device)
    pair_set = build_test_pairs(config["test"])
    results = evaluate_model(model, pair_set, tuple(config["rules"]), batch_size=int(config["batch_size"]),
                             device=device, crop=_crop_for(model, pair_set))
    document = {
        "test": config["test"]["name"], "pairs": pair_set.num_pairs, "folds": pair_set.num_folds,
        "images": len(pair_set.images), "same": int(pair_set.issame.sum()),
        "results": {result.rule.name + ("+flip" if result.flip else ""): {
            "accuracy": result.folds.mean, "accuracy_std": result.folds.std,
            "auc": result.auc if np.isfinite(result.auc) else None,
            "eer": result.eer if np.isfinite(result.eer) else None} for result in results},
    }
    atomic_write_json(context.output, document)
    return document


def _group_images(group: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 3, H, W) and class labels (N,) of one analysis group."""
    if group["kind"] == "synthetic":
        from synface.data.synthetic import SyntheticDataset

        dataset = SyntheticDataset(group["dataset"])
        rows = np.flatnonzero(dataset.identity < int(group["classes"]))
        images, _, _ = dataset.get_batch(rows)  # (N, 3, H, W) uint8
        return images.contiguous().numpy(), dataset.identity[rows]
    from synface.experiments.realdata import cfp_identity

    root = Path(group["root"])
    files = sorted(group["files"])
    names = [cfp_identity(f) for f in files]
    kept = sorted(set(names))[: int(group["classes"])]
    chosen = [(f, n) for f, n in zip(files, names) if n in kept]
    images = np.stack([read_rgb(root / f).transpose(2, 0, 1) for f, _ in chosen])
    labels = np.array([kept.index(n) for _, n in chosen])
    return images, labels


@register_executor("analyse")
def run_analyse(context: StepContext) -> dict[str, Any]:
    """Fig. 3: embed classes of several sets with one model; class variation per set and an MDS plot."""
    from synface.eval.analysis import (
        class_variation,
        plot_mds,
        plot_variation,
        select_classes,
    )
    from synface.eval.embed import embed_images

    config, device = context.config, resolve_device(context.device)
    model = load_trained(config["model"], device)
    output = context.output
    output.mkdir(parents=True, exist_ok=True)
    embeddings, labels, names, variations = [], [], [], {}
    for group in config["groups"]:
        images, group_labels = _group_images(group)
        if len(np.unique(group_labels)) < 2:
            raise DataError(f"analysis group {group['name']}: needs at least 2 classes, has {len(np.unique(group_labels))}")
        vectors = embed_images(model, images, batch_size=int(config["batch_size"]), device=device)
        variations[group["name"]] = class_variation(vectors, group_labels)
        embeddings.append(vectors)
        labels.append(group_labels)
        names += [group["name"]] * len(vectors)
    vectors, labels_all, datasets = np.concatenate(embeddings), np.concatenate(labels), np.asarray(names)
    mds = config["mds"]
    rows = select_classes(labels_all, datasets, int(mds["classes"]), int(mds["samples"]), int(mds["seed"]))
    plot_mds(vectors[rows], labels_all[rows], datasets[rows], output / "mds.png", seed=int(mds["seed"]),
             title="MDS of face embeddings (classes of each set)")
    plot_variation(variations, output / "variation.png")
    summary = {name: variation.summary() for name, variation in variations.items()}
    atomic_write_json(output / "variation.json", summary)
    return {"variation": summary, "mds_points": len(rows), "figures": ["mds.png", "variation.png"]}
