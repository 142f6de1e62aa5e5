"""MTCNN networks, weight installation, detection and folder alignment."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from synface.alignment import alignment_matrix, apply_affine, get_template, invert_affine, warp_affine
from synface.errors import AssetError, DataError
from synface.eval.detect import DetectorConfig, FaceDetector, nms
from synface.eval.mtcnn import build_networks, load_networks
from synface.eval.mtcnn_weights import install_mtcnn_weights


@pytest.fixture(scope="module")
def mtcnn_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published weights, fetched once with pip (skips when PyPI is unreachable)."""
    scratch = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(scratch), "facenet-pytorch==2.6.0"],
        capture_output=True, text=True, check=False,
    )
    wheels = list(scratch.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        pytest.skip("facenet-pytorch wheel not downloadable here")
    return install_mtcnn_weights(wheels[0], tmp_path_factory.mktemp("weights") / "mtcnn")


@pytest.fixture(scope="module")
def detector(mtcnn_weights: Path) -> FaceDetector:
    return FaceDetector(DetectorConfig(), weights=str(mtcnn_weights))


def test_network_output_shapes():
    nets = build_networks()
    reg, prob = nets["pnet"](torch.zeros(2, 3, 12, 12))
    assert reg.shape == (2, 4, 1, 1) and prob.shape == (2, 1, 1)
    reg, prob = nets["rnet"](torch.zeros(2, 3, 24, 24))
    assert reg.shape == (2, 4) and prob.shape == (2,)
    reg, points, prob = nets["onet"](torch.zeros(2, 3, 48, 48))
    assert reg.shape == (2, 4) and points.shape == (2, 10) and prob.shape == (2,)


def _slow_nms(boxes, scores, threshold, mode):
    remaining = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    while remaining:
        i = remaining.pop(0)
        keep.append(i)
        survivors = []
        for j in remaining:
            ix = max(0.0, min(boxes[i][2], boxes[j][2]) - max(boxes[i][0], boxes[j][0]) + 1)
            iy = max(0.0, min(boxes[i][3], boxes[j][3]) - max(boxes[i][1], boxes[j][1]) + 1)
            area = [(b[2] - b[0] + 1) * (b[3] - b[1] + 1) for b in (boxes[i], boxes[j])]
            overlap = ix * iy / (min(area) if mode == "min" else area[0] + area[1] - ix * iy)
            if overlap <= threshold:
                survivors.append(j)
        remaining = survivors
    return keep


@pytest.mark.parametrize("mode", ["union", "min"])
def test_nms_matches_slow_reference(mode):
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 60, size=(80, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, size=(80, 2))], axis=1)
    scores = rng.uniform(size=80)
    assert nms(boxes, scores, 0.5, mode).tolist() == _slow_nms(boxes.tolist(), scores.tolist(), 0.5, mode)


def test_installer_reads_plain_state_dicts_and_refuses_code(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name, net in build_networks().items():
        torch.save(net.state_dict(), source / f"{name}.pt")
    target = install_mtcnn_weights(source, tmp_path / "out")
    load_networks(target)  # strict load: names and shapes match

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (source / "pnet.pt").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(AssetError, match="pnet.pt"):
        install_mtcnn_weights(source, tmp_path / "out2")
    assert not marker.exists()
    with pytest.raises(AssetError, match="not found"):
        load_networks(tmp_path / "nowhere")


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


@pytest.mark.shared
@pytest.mark.slow
def test_finds_a_face_in_every_att_image(detector, shared_dir):
    misses = []
    for path in sorted((shared_dir / "data" / "att_faces").rglob("*.pgm")):
        if len(detector.detect(_rgb(path))) == 0:
            misses.append(path.name)
    assert misses == []


@pytest.mark.shared
def test_landmarks_follow_a_shift_and_scale_of_the_photo(detector, shared_dir):
    """Detect on photos and on scaled, shifted copies: the landmarks move with them.

    MTCNN is only roughly equivariant (its pyramid grid moves), so this catches swapped
    axes, wrong scales and crops taken from the wrong place, not sub-pixel offsets.
    """
    errors, template_errors = [], []
    template = get_template("synface")
    scale = 1.5
    move = torch.tensor([[[scale, 0.0, 37.0], [0.0, scale, 21.0]]], dtype=torch.float64)
    for person in ("101", "102", "103", "104", "105"):
        image = _rgb(shared_dir / "data" / "cfp" / "Data" / "Images" / person / "frontal" / "02.jpg")
        base = detector.detect(image)
        landmarks = torch.from_numpy(base.landmarks[detector.select(base, *image.shape[:2])])
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        moved = warp_affine(pixels, move, 2 * image.shape[0], 2 * image.shape[1], padding_mode="zeros")
        moved = moved.round().byte()[0].permute(1, 2, 0).numpy()
        found = detector.detect(moved)
        moved_landmarks = torch.from_numpy(found.landmarks[detector.select(found, *moved.shape[:2])])
        back = apply_affine(invert_affine(move[0]), moved_landmarks)
        errors.append((back - landmarks).norm(dim=-1))
        a = apply_affine(alignment_matrix(landmarks[None], template)[0], landmarks)
        b = apply_affine(alignment_matrix(back[None], template)[0], back)
        template_errors.append((a - b).norm(dim=-1))
    assert torch.cat(errors).median() < 2.5
    assert torch.cat(template_errors).median() < 1.5


@pytest.mark.shared
def test_align_tree_resumes_and_applies_the_missing_face_policy(detector, shared_dir, tmp_path):
    from synface.eval.align import LOG_NAME, REPORT_NAME, align_tree

    source = tmp_path / "photos"
    for person in ("s1", "s2"):
        (source / person).mkdir(parents=True)
        for k in (1, 2):
            Image.open(shared_dir / "data" / "att_faces" / person / f"{k}.pgm").save(source / person / f"{k}.png")
    Image.new("RGB", (120, 100), (128, 128, 128)).save(source / "s2" / "blank.png")
    (source / "pairs.txt").write_text("1\ns1\t1\t2\n")

    out = tmp_path / "aligned"
    with pytest.raises(DataError, match="blank.png: no face detected"):
        align_tree(source, out, on_missing="error", detector=detector)
    first = [json.loads(line)["path"] for line in (out / LOG_NAME).read_text().splitlines()]
    assert first == ["s1/1.png", "s1/2.png", "s2/1.png", "s2/2.png"]  # progress kept up to the failure

    summary = align_tree(source, out, on_missing="skip", detector=detector)
    assert summary.aligned == 4 and summary.skipped == ["s2/blank.png"]
    log_lines = (out / LOG_NAME).read_text().splitlines()
    assert len(log_lines) == 5  # the four aligned images were not redone
    assert not (out / "s2" / "blank.png").exists()
    assert (out / "pairs.txt").read_text() == "1\ns1\t1\t2\n"
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["skipped"] == ["s2/blank.png"] and report["aligned"] == 4
    with Image.open(out / "s1" / "1.png") as crop:
        assert crop.size == (96, 112)

    centred = align_tree(source, tmp_path / "centred", on_missing="center", detector=detector)
    assert centred.fallback == ["s2/blank.png"]
    assert (tmp_path / "centred" / "s2" / "blank.png").is_file()


def test_align_tree_rejects_bad_folders(tmp_path):
    from synface.eval.align import align_tree

    with pytest.raises(DataError, match="source folder not found"):
        align_tree(tmp_path / "missing", tmp_path / "out", detector=object())  # type: ignore[arg-type]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        align_tree(tmp_path / "empty", tmp_path / "out", detector=object())  # type: ignore[arg-type]
