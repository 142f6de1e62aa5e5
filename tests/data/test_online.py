"""Online data: fresh per-epoch identity mixup, unlimited depth, rank sharding and the loader wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synface.data import loader as loader_module
from synface.data.loader import DataConfig, EpochBatchSampler, build_train_source
from synface.data.online import OnlineBatches, draw_epoch_mixup
from synface.errors import ConfigError
from synface.generate.mixup import MixupConfig, soft_labels


class StubGenerator:
    """Renders (identity, sample) into pixel values so tests can read back what was asked for."""

    def __init__(self, mode: str = "grid", height: int = 4, width: int = 3) -> None:
        self.config = type("Config", (), {"mixup": MixupConfig(mode=mode)})()
        self.height, self.width = height, width
        self.calls: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def render(self, identity_ids, sample_ids, partners=None, phis=None):
        identity, sample = np.asarray(identity_ids), np.asarray(sample_ids)
        self.calls.append((identity, sample, np.asarray(partners), np.asarray(phis)))
        images = torch.zeros(len(identity), self.height, self.width, 3, dtype=torch.uint8)
        images[..., 0] = torch.from_numpy(identity).view(-1, 1, 1).to(torch.uint8)
        images[..., 1] = torch.from_numpy(sample % 256).view(-1, 1, 1).to(torch.uint8)
        labels, weights = soft_labels(identity, partners, phis, keep_primary=self.config.mixup.mode == "attack")
        return images, {"labels": torch.from_numpy(labels), "label_weights": torch.from_numpy(weights)}


def test_epoch_mixup_draws_are_fresh_per_epoch_and_fixed_by_seed():
    grid = MixupConfig(mode="grid")
    partners, phis = draw_epoch_mixup(grid, num_identities=5, samples_per_identity=40, seed=1, epoch=0)
    identity = np.repeat(np.arange(5), 40)
    assert partners.shape == (200,) and (partners != identity).all() and partners.max() < 5
    assert set(np.round(phis * 20).astype(int)) <= set(range(21)) and len(set(phis.tolist())) > 10
    assert len(set(partners[identity == 0].tolist())) == 4  # partners spread over the others
    again = draw_epoch_mixup(grid, 5, 40, seed=1, epoch=0)
    assert np.array_equal(again[0], partners) and np.array_equal(again[1], phis)
    next_epoch = draw_epoch_mixup(grid, 5, 40, seed=1, epoch=1)
    assert not np.array_equal(next_epoch[0], partners) and not np.array_equal(next_epoch[1], phis)
    plain_partners, plain_phis = draw_epoch_mixup(MixupConfig(mode="none"), 5, 2, seed=1, epoch=0)
    assert np.array_equal(plain_partners, np.repeat(np.arange(5), 2)) and (plain_phis == 1).all()
    fixed = draw_epoch_mixup(MixupConfig(mode="fixed", phi=0.8), 5, 2, seed=1, epoch=0)[1]
    assert np.allclose(fixed, 0.8)


def test_batches_render_new_samples_each_epoch_with_consistent_labels():
    generator = StubGenerator()
    online = OnlineBatches(generator, num_identities=3, samples_per_identity=4, seed=2)
    seen = {}
    for epoch in (0, 1):
        sampler = EpochBatchSampler(len(online), 5, seed=2, drop_last=False)
        sampler.set_epoch(epoch)
        partners, phis = draw_epoch_mixup(generator.config.mixup, 3, 4, seed=2, epoch=epoch)
        for images, targets, weights in online.batches(sampler, epoch):
            assert images.shape[1:] == (3, 4, 3) and images.dtype == torch.uint8
            identity, sample = generator.calls[-1][:2]
            assert torch.equal(images[:, 0, 0, 0], torch.from_numpy(identity).to(torch.uint8))
            assert ((sample >= 4 * epoch) & (sample < 4 * epoch + 4)).all()
            virtual = identity * 4 + sample - 4 * epoch
            assert targets[:, 0].tolist() == identity.tolist()
            assert targets[:, 1].tolist() == partners[virtual].tolist()
            assert torch.allclose(weights[:, 0], torch.from_numpy(phis[virtual]))
            seen.setdefault(epoch, []).extend(virtual.tolist())
    assert sorted(seen[0]) == sorted(seen[1]) == list(range(12))


def test_fixed_depth_rerenders_the_same_samples():
    generator = StubGenerator(mode="none")
    online = OnlineBatches(generator, 2, 3, fresh_samples=False)
    list(online.batches([np.arange(6)], epoch=5))
    assert generator.calls[-1][1].tolist() == [0, 1, 2, 0, 1, 2]


def test_online_kind_through_the_train_source(monkeypatch):
    generator = StubGenerator()

    def fake_build(path, num_identities, samples_per_identity, image_size, seed, device, fresh):
        assert (path, num_identities, samples_per_identity, tuple(image_size)) == ("gen.yaml", 6, 4, (4, 3))
        return OnlineBatches(generator, num_identities, samples_per_identity, seed, fresh)

    monkeypatch.setattr(loader_module, "build_online_batches", fake_build)
    cfg = DataConfig(kind="online", path="gen.yaml", image_size=(4, 3), num_identities=6,
                     samples_per_identity=4, batch_size=4, workers=0, augmentation="none")
    ranks = [build_train_source(cfg, "cpu", rank=r, world_size=2) for r in range(2)]
    assert ranks[0].num_classes == 6 and len(ranks[0]) == 3
    rendered = []
    for source in ranks:
        for x, targets, weights in source:
            assert x.dtype == torch.float32 and targets.shape == (4, 2)
            assert torch.allclose(weights.sum(1), torch.ones(4))
            identity, sample = generator.calls[-1][:2]
            rendered.extend(zip(identity.tolist(), sample.tolist()))
    assert sorted(rendered) == [(i, j) for i in range(6) for j in range(4)]


def test_online_needs_two_identities_for_mixup():
    with pytest.raises(ConfigError, match="at least 2 identities"):
        draw_epoch_mixup(MixupConfig(mode="grid"), 1, 3, seed=0, epoch=0)


@pytest.mark.slow
def test_online_source_with_the_face_generator(tmp_path):
    from synface.errors import AssetError
    from synface.generate.sampling import GenerateConfig

    path = tmp_path / "generate.yaml"
    GenerateConfig.from_dict({"layout": "3_2", "mixup": {"mode": "grid"}, "render": {"supersample": 1},
                              "batch_size": 3}).to_yaml(path)
    cfg = DataConfig(kind="online", path=str(path), batch_size=3, workers=0, augmentation="paper", seed=4)
    try:
        source = build_train_source(cfg, "cpu")
    except AssetError as error:
        pytest.skip(f"no default face model available: {error}")
    assert source.num_classes == 3 and len(source) == 2
    source.set_epoch(1)
    x, targets, weights = next(iter(source))
    assert x.shape == (3, 3, 112, 96) and x.dtype == torch.float32 and x.abs().max() <= 1
    partners, phis = draw_epoch_mixup(source.online.generator.config.mixup, 3, 2, seed=4, epoch=1)
    virtual = EpochBatchSampler(6, 3, seed=4)
    virtual.set_epoch(1)
    first = next(iter(virtual))
    assert targets[:, 0].tolist() == (first // 2).tolist()
    assert targets[:, 1].tolist() == partners[first].tolist()
    assert torch.allclose(weights[:, 0], torch.from_numpy(phis[first]))
