"""The dataset writer: format, determinism, single-shard regeneration, resume, refusals, export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file

from synface.errors import DataError
from synface.generate import writer
from synface.generate.export import export_image_folder, iter_shards
from synface.generate.generator import SAMPLE_FIELDS, FaceGenerator
from synface.generate.sampling import GenerateConfig
from synface.generate.writer import generate_dataset, plan_shards, render_shard

# Identity 0 with 3 samples, identity 1 with 1, with mixup; shards of 3 rendered in batches of 2
# (a short last batch and a short last shard).
CONFIG = GenerateConfig.from_dict({
    "layout": {"group_identities": [1, 1], "group_samples": [3, 1]},
    "mixup": {"mode": "grid"},
    "render": {"supersample": 1},
    "shard_size": 3,
    "batch_size": 2,
})


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generator() -> FaceGenerator:
    return FaceGenerator(CONFIG, "cpu")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, generator: FaceGenerator) -> Path:
    folder = tmp_path_factory.mktemp("reference") / "dataset"
    generate_dataset(CONFIG, folder, generator=generator)
    return folder


def test_format_and_contents(reference: Path, generator: FaceGenerator) -> None:
    summary = json.loads((reference / "dataset.json").read_text())
    assert summary["format"] == "synface-dataset/1"
    assert (summary["num_identities"], summary["num_samples"]) == (2, 4)
    assert summary["face_model"]["content_hash"] == generator.model.content_hash()
    assert summary["config"] == CONFIG.to_dict()
    assert [(s["start"], s["stop"]) for s in summary["shards"]] == [(0, 3), (3, 4)]
    assert json.loads((reference / "plan.json").read_text())["config_hash"] == CONFIG.content_hash()
    identities = load_file(str(reference / "identities.safetensors"))
    np.testing.assert_array_equal(identities["sample_counts"], [3, 1])
    assert identities["identity_shape"].shape == (2, generator.model.num_identity)

    shards = list(iter_shards(reference))
    images = np.concatenate([s[0] for s in shards])
    meta = {k: np.concatenate([s[1][k] for s in shards]) for k in SAMPLE_FIELDS}
    assert images.shape == (4, generator.height, generator.width, 3) and images.dtype == np.uint8
    assert images.std() > 5  # real pictures, not a constant fill
    np.testing.assert_array_equal(meta["identity"], [0, 0, 0, 1])  # ordered by identity ...
    np.testing.assert_array_equal(meta["sample_index"], [0, 1, 2, 0])  # ... then sample index
    # Identity mixup: partners are the other identity of this dataset, labels and weights match the mixing.
    np.testing.assert_array_equal(meta["mix_partner"], 1 - meta["identity"])
    np.testing.assert_array_equal(meta["labels"], np.stack([meta["identity"], meta["mix_partner"]], 1))
    np.testing.assert_allclose(meta["label_weights"][:, 0], meta["mix_phi"])
    np.testing.assert_allclose(meta["label_weights"].sum(1), 1.0, rtol=1e-6)
    assert np.all(np.isin(np.round(meta["mix_phi"] * 20), np.arange(21)))
    # Stored coefficients are the mix of the stored identity coefficients.
    phi = meta["mix_phi"][:, None]
    expected = phi * identities["identity_shape"][meta["identity"]] + (1 - phi) * identities["identity_shape"][meta["mix_partner"]]
    np.testing.assert_allclose(meta["identity_shape"], expected, rtol=1e-5, atol=1e-6)


def test_generating_twice_gives_identical_files(reference: Path, tmp_path: Path) -> None:
    generate_dataset(CONFIG, tmp_path / "again")  # a fresh generator: no shared caches
    first, second = _files(reference), _files(tmp_path / "again")
    assert list(first) == list(second)
    for name in first:
        assert first[name] == second[name], name


def test_one_shard_regenerates_alone(reference: Path) -> None:
    fresh = FaceGenerator(CONFIG, "cpu")
    shard = plan_shards(4, CONFIG.shard_size)[0]
    images, meta = render_shard(fresh, CONFIG.layout.resolve(), shard)
    np.testing.assert_array_equal(images, np.load(reference / shard.images_name))
    stored = load_file(str(reference / shard.meta_name))
    for key in SAMPLE_FIELDS:
        np.testing.assert_array_equal(meta[key], stored[key], err_msg=key)


def test_resume_after_a_kill_finishes_the_same_dataset(reference: Path, generator: FaceGenerator,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "killed"
    real_write = writer.write_shard
    calls = []

    def dying_write(target, shard, images, meta):
        if calls:
            # Die half-way through the second shard: its images are written, its meta is not.
            (target / "shards" / ".meta-00001.safetensors.abc.tmp").write_bytes(b"partial")
            raise KeyboardInterrupt
        calls.append(shard.index)
        real_write(target, shard, images, meta)

    monkeypatch.setattr(writer, "write_shard", dying_write)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(CONFIG, folder, generator=generator)
    assert (folder / "shards" / "meta-00000.safetensors").is_file()
    assert not (folder / "dataset.json").exists() and not (folder / "shards" / "meta-00001.safetensors").exists()
    monkeypatch.setattr(writer, "write_shard", real_write)

    rendered = []
    real_render = writer.render_shard
    monkeypatch.setattr(writer, "render_shard", lambda g, l, s, *a: rendered.append(s.index) or real_render(g, l, s, *a))
    generate_dataset(CONFIG, folder, generator=generator)
    assert rendered == [1]  # the complete shard is skipped
    assert _files(folder) == _files(reference)  # stale temporaries gone, same bytes


def test_a_complete_dataset_is_not_rendered_again(reference: Path, generator: FaceGenerator,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    before = _files(reference)
    monkeypatch.setattr(writer, "render_shard", lambda *args: pytest.fail("rendered a complete dataset"))
    generate_dataset(CONFIG, reference, generator=generator)
    assert _files(reference) == before


def test_another_config_in_the_folder_is_refused_unless_overwrite(reference: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    folder.mkdir()
    for name, data in _files(reference).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    other = CONFIG.replace(seed=5, layout=CONFIG.layout.replace(group_samples=(1, 1)))
    generator = FaceGenerator(other, "cpu")
    before = _files(folder)
    with pytest.raises(DataError, match="different config .*--overwrite"):
        generate_dataset(other, folder, generator=generator)
    assert _files(folder) == before
    summary = generate_dataset(other, folder, overwrite=True, generator=generator)
    assert summary["num_samples"] == 2 and summary["config"]["seed"] == 5
    assert not (folder / "shards" / "meta-00001.safetensors").exists()


def test_a_run_killed_before_its_plan_leaves_a_usable_folder(tmp_path: Path, generator: FaceGenerator,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shards").mkdir()
    (tmp_path / ".plan.json.x1.tmp").write_text("{")
    monkeypatch.setattr(writer, "render_shard", lambda *args: pytest.fail("stop after the checks"))
    with pytest.raises(pytest.fail.Exception):
        generate_dataset(CONFIG, tmp_path, generator=generator)
    assert json.loads((tmp_path / "plan.json").read_text())["config_hash"] == CONFIG.content_hash()
    assert not (tmp_path / ".plan.json.x1.tmp").exists()


def test_a_foreign_folder_is_refused(tmp_path: Path, generator: FaceGenerator) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty and holds no plan.json"):
        generate_dataset(CONFIG, tmp_path, generator=generator)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        generate_dataset(CONFIG, tmp_path / "file", generator=generator)


def test_export_writes_an_image_folder_with_soft_labels(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    assert export_image_folder(reference, out) == 4
    rows = list(csv.DictReader((out / "labels.csv").open()))
    shards = list(iter_shards(reference))
    images = np.concatenate([s[0] for s in shards])
    labels = np.concatenate([s[1]["labels"] for s in shards])
    weights = np.concatenate([s[1]["label_weights"] for s in shards])
    assert [r["path"] for r in rows] == ["0/0000.png", "0/0001.png", "0/0002.png", "1/0000.png"]
    for k, row in enumerate(rows):
        np.testing.assert_array_equal(np.asarray(Image.open(out / row["path"])), images[k])
        assert (int(row["id_a"]), int(row["id_b"])) == tuple(labels[k])
        assert float(row["w_a"]) == pytest.approx(weights[k, 0], abs=1e-6)
        assert float(row["w_b"]) == pytest.approx(weights[k, 1], abs=1e-6)
    with pytest.raises(DataError, match="not empty"):
        export_image_folder(reference, out)
    with pytest.raises(DataError, match="dataset.json: not found"):
        export_image_folder(tmp_path / "nothing", tmp_path / "export2")
