"""Measured Syn-LFW statistics end to end, on an aligned set whose poses are known.

A small "LFW" is made of rendered faces (LFW's folder and pairs.txt layout, with an
``align_log.jsonl`` holding each crop's five landmarks, as ``synface align`` writes),
so the statistics step can be checked against the poses the faces were rendered with.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file

from synface.experiments.plan import Planner
from synface.experiments.realdata import inspect_lfw, load_test_pairs
from synface.experiments.runner import Runner
from synface.experiments.spec import load_preset
from synface.experiments.stats_match import OVERRIDES_FILE
from synface.generate.sampling import GenerateConfig
from synface.generate.writer import generate_dataset

pytestmark = pytest.mark.slow
PEOPLE, PHOTOS = 6, 3


def _meta(dataset: Path) -> dict[str, np.ndarray]:
    manifest = json.loads((dataset / "dataset.json").read_text())
    parts = [load_file(str(dataset / shard["meta"])) for shard in manifest["shards"]]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


@pytest.fixture(scope="module")
def fake_lfw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """An aligned LFW-layout folder of rendered faces with varied yaw; returns it and the rendered poses."""
    work = tmp_path_factory.mktemp("fake_lfw")
    config = GenerateConfig.from_dict({"seed": 7, "layout": f"{PEOPLE}_{PHOTOS}", "render": {"supersample": 1},
                                       "pose": {"yaw": {"std": 25.0, "limit": 45.0}}, "batch_size": 32})
    generate_dataset(config, work / "dataset")
    meta = _meta(work / "dataset")
    images = np.load(work / "dataset" / "shards" / "images-00000.npy")
    root = work / "lfw"
    log = []
    for row, (identity, sample) in enumerate(zip(meta["identity"], meta["sample_index"])):
        name = f"person_{identity}"
        relative = f"{name}/{name}_{sample + 1:04d}.png"
        (root / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[row]).save(root / relative)
        log.append({"path": relative, "status": "aligned", "score": 1.0,
                    "landmarks": meta["landmarks5"][row].tolist()})
    (root / "align_log.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in log))
    lines = ["2\t2"]
    for fold in range(2):
        first, second = 3 * fold, 3 * fold + 1
        lines += [f"person_{first}\t1\t2", f"person_{second}\t2\t3",
                  f"person_{first}\t1\tperson_{second}\t1", f"person_{first}\t3\tperson_{3 * fold + 2}\t2"]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root, meta["pose"]


def test_lfw_layout_is_read_as_an_aligned_set(fake_lfw: tuple[Path, np.ndarray]) -> None:
    root, _ = fake_lfw
    lfw = inspect_lfw(root)
    assert lfw.state == "aligned" and lfw.pairs == root / "pairs.txt"
    pairs = load_test_pairs(lfw, "lfw", None, per_fold=1)
    assert pairs.num_pairs == 4 and pairs.num_folds == 2 and pairs.issame.tolist() == [True, False, True, False]


def test_statistics_follow_the_real_set(fake_lfw: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    root, rendered_pose = fake_lfw
    planner = Planner(load_preset("tiny", ["synlfw.light_candidates=3"]), lfw=inspect_lfw(root))
    statistics = planner.statistics()
    assert statistics is not None
    test = planner.synthetic_test()
    runner = Runner(tmp_path)
    runner.run(test.deps)
    summary = runner.result(statistics)
    assert summary["identities"] == PEOPLE and summary["images"] == PEOPLE * PHOTOS
    with np.load(runner.output(statistics) / OVERRIDES_FILE) as saved:
        measured_pose, counts = saved["pose"], saved["counts"]
        files = saved["files"].tolist()
    assert counts.tolist() == [PHOTOS] * PEOPLE
    # Photos are taken identity by identity; match them back to the rendered poses.
    order = [PHOTOS * int(f.split("/")[0].split("_")[1]) + int(f[-8:-4]) - 1 for f in files]
    truth = rendered_pose[order, 0]
    assert np.corrcoef(truth, measured_pose[:, 0])[0, 1] > 0.95
    assert np.abs(truth - measured_pose[:, 0]).mean() < 6.0
    # The Syn-LFW-like set renders exactly the measured poses, on new identities.
    synthetic = _meta(Path(test.config["dataset"].replace(f"@{test.deps[0].id}", str(runner.output(test.deps[0])))))
    np.testing.assert_allclose(synthetic["pose"], measured_pose, atol=1e-5)
    assert np.bincount(synthetic["identity"]).tolist() == [PHOTOS] * PEOPLE
    result = runner.result(test.deps[0])
    assert result["statistics"] == "measured" and result["pose_check"]["yaw_correlation"] > 0.95
