"""Match a real set's measured pose, mouth and light proxies to the generator's own draws (see :mod:`.synlfw`).

:func:`measure_and_match` writes ``statistics/overrides.npz`` (per synthetic image:
pose, expression weights, light coefficients; per identity: image counts) and
``statistics/statistics.json`` (summaries for the report); :func:`load_overrides`
reads them back for the Syn-LFW-like generator. :func:`rendered_pose_check`
re-estimates the pose of rendered images from their landmarks, as a check of the
estimator on faces whose pose is known.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synface.errors import DataError
from synface.experiments.realdata import cfp_identity, read_align_log
from synface.experiments.synlfw import (
    choose_photos,
    fit_pose,
    light_proxies,
    measure_real,
    mouth_metrics,
    nearest,
    summarise,
)
from synface.generate.facemodel import FaceModel
from synface.io import atomic_open, atomic_write_json

logger = logging.getLogger(__name__)

OVERRIDES_FILE, SUMMARY_FILE = "overrides.npz", "statistics.json"
EXPRESSION_STREAM, RENDER_BATCH = 5, 32


def model_points(model: FaceModel) -> np.ndarray:
    """(5, 3) mean-face landmarks relative to the pose pivot, cm."""
    landmarks = model.landmarks(model.vertices[None].cpu().float(), 5)[0]  # (5, 3)
    return (landmarks - model.pivot.cpu().float()).double().numpy()


def expression_candidates(model: FaceModel, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Expression draws from the generator's prior (the first one neutral) and their mouth ratios.

    Returns:
        ``(weights (K, Ke) float32, ratios (K, 2))``: mouth width and drop of each draw's
        frontal landmarks divided by the neutral face's.
    """
    from synface.generate.expression import ExpressionConfig, ExpressionPrior

    prior = ExpressionPrior(model.expression_names, ExpressionConfig())
    pool = [prior.neutral()] + [prior.sample(np.random.default_rng([seed, EXPRESSION_STREAM, k]))
                                for k in range(1, count)]
    weights = np.stack(pool).astype(np.float32)  # (K, Ke)
    cpu = model.to("cpu")
    with torch.no_grad():
        shapes = cpu.shape(torch.zeros(len(weights), cpu.num_identity), torch.from_numpy(weights))  # (K, V, 3)
        points = cpu.landmarks(shapes, 5).double().numpy()  # (K, 5, 3)
    frontal = np.stack([points[..., 0], -points[..., 1]], axis=-1)  # image plane, y down
    metrics = mouth_metrics(frontal)
    return weights, metrics / metrics[0]


def light_candidates(config: dict[str, Any], model: FaceModel, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Lights from the generator's prior rendered on one frontal, neutral face; ``(lights (K, 27), proxies (K, 3))``."""
    from synface.generate.generator import FaceGenerator
    from synface.generate.sampling import GenerateConfig

    count = int(config["light_candidates"])
    generate = GenerateConfig.from_dict({
        "seed": int(config["seed"]), "face_model": config["face_model"], "layout": f"1_{count}",
        "expression": {"frozen": True}, "pose": {"frozen": True}, "noise": {"frozen": True},
        "render": config.get("render", {}),
    })
    generator = FaceGenerator(generate, device, model=model)
    lights, proxies = [], []
    for start in range(0, count, RENDER_BATCH):
        samples = np.arange(start, min(start + RENDER_BATCH, count))
        factors = generator.sample(np.zeros(len(samples), dtype=np.int64), samples)
        images, _ = generator.render_factors(factors)
        lights.append(factors.light)
        proxies.append(light_proxies(images.cpu().numpy()))
    return np.concatenate(lights).astype(np.float32), np.concatenate(proxies)


def measure_and_match(config: dict[str, Any], folder: Path, device: torch.device) -> dict[str, Any]:
    """Measure the real set ``config["aligned"]`` and pick the matching generator draws.

    Args:
        config: ``aligned`` (a synface-aligned folder with ``align_log.jsonl``), ``files``
            (relative paths to use; empty: all logged), ``max_identities``,
            ``expression_candidates``, ``light_candidates``, ``seed``, ``face_model``, ``render``.
        folder: where ``overrides.npz`` and ``statistics.json`` go.
        device: where the light candidates are rendered.

    Returns:
        The summary written to ``statistics.json``.
    """
    from synface.experiments.exec_data import read_rgb
    from synface.generate.registry import resolve_face_model

    aligned = Path(config["aligned"])
    entries = read_align_log(aligned)
    wanted = set(config.get("files") or [])
    if wanted:
        entries = {path: entry for path, entry in entries.items() if path in wanted}
    chosen = choose_photos(entries, cfp_identity, int(config.get("max_identities", 0)))
    if not chosen:
        raise DataError(f"{aligned}: no photo with MTCNN landmarks in align_log.jsonl to take statistics from")
    model = resolve_face_model(config["face_model"])
    real = measure_real(aligned, entries, chosen, model_points(model), read_rgb)
    expressions, expression_ratios = expression_candidates(model, int(config["expression_candidates"]),
                                                           int(config["seed"]))
    lights, light_measures = light_candidates(config, model, device)
    expression_index = nearest(real.mouth, expression_ratios)
    light_index = nearest(real.light, light_measures)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / OVERRIDES_FILE) as handle:
        np.savez(handle, counts=real.counts, pose=real.pose.astype(np.float32),
                 expression=expressions[expression_index], light=lights[light_index],
                 files=real.files.astype(str), identities=real.identities.astype(str),
                 mouth=real.mouth, light_proxies=real.light, residual=real.residual,
                 expression_index=expression_index, light_index=light_index)
    summary = {
        "source": str(aligned),
        "identities": len(chosen),
        "images": len(real.files),
        "yaw": summarise(real.pose[:, 0]), "pitch": summarise(real.pose[:, 1]), "roll": summarise(real.pose[:, 2]),
        "mouth_width": summarise(real.mouth[:, 0]), "mouth_drop": summarise(real.mouth[:, 1]),
        "brightness": summarise(real.light[:, 0]), "light_left_right": summarise(real.light[:, 1]),
        "light_top_bottom": summarise(real.light[:, 2]),
        "pose_fit_residual": summarise(real.residual),
        "neutral_expression_share": float(np.mean(expression_index == 0)),
        "distinct_expressions": len(np.unique(expression_index)),
        "distinct_lights": len(np.unique(light_index)),
    }
    atomic_write_json(folder / SUMMARY_FILE, summary)
    return summary


def load_overrides(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(counts (N,), {"pose", "expression", "light"})`` written by :func:`measure_and_match`."""
    path = Path(folder) / OVERRIDES_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["counts"], {name: data[name] for name in ("pose", "expression", "light")}
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"{path}: unreadable Syn-LFW statistics ({error})") from None


def rendered_pose_check(dataset: Path, model: FaceModel, limit: int = 300) -> dict[str, Any]:
    """Re-estimate yaw from the rendered crops' landmarks and compare with the yaw asked for.

    Alignment to the crop template is a similarity, which keeps yaw and pitch (roll
    is aligned away), so the estimator should recover the rendered yaw.
    """
    from safetensors.numpy import load_file

    manifest = json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))
    poses, landmarks = [], []
    for shard in manifest["shards"]:
        meta = load_file(str(dataset / shard["meta"]))
        poses.append(meta["pose"])
        landmarks.append(meta["landmarks5"])
        if sum(len(p) for p in poses) >= limit:
            break
    pose = np.concatenate(poses)[:limit]
    points = np.concatenate(landmarks)[:limit]
    reference = model_points(model)
    estimated = np.array([fit_pose(p, reference)[0] for p in points])
    error = estimated[:, 0] - pose[:, 0]
    correlation = float(np.corrcoef(pose[:, 0], estimated[:, 0])[0, 1]) if pose[:, 0].std() > 1e-6 else float("nan")
    return {"samples": len(pose), "yaw_asked": summarise(pose[:, 0]), "yaw_estimated": summarise(estimated[:, 0]),
            "yaw_mean_abs_error": float(np.abs(error).mean()), "yaw_correlation": correlation}
