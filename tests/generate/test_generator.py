"""The batched generator: images, labels and coefficients of identity mixup and attack sets."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from synface.generate.generator import SAMPLE_FIELDS, FaceGenerator
from synface.generate.preview import identity_grid, mixup_strip
from synface.generate.sampling import GenerateConfig

CONFIG = GenerateConfig.from_dict({"layout": "4_2", "mixup": {"mode": "grid"}, "render": {"supersample": 1}})


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> FaceGenerator:
    home = os.environ.get("SYNFACE_TEST_HOME", str(tmp_path_factory.getbasetemp() / "synface_home"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNFACE_HOME", home)  # module fixtures run before the per-test home is set
        return FaceGenerator(CONFIG, "cpu")


def test_render_returns_uint8_crops_and_every_field(generator: FaceGenerator) -> None:
    images, fields = generator.render([1, 3], [0, 1])
    assert images.shape == (2, generator.height, generator.width, 3) and images.dtype == torch.uint8
    assert (generator.height, generator.width) == (112, 96)
    assert set(fields) == set(SAMPLE_FIELDS)
    assert all(value.shape[0] == 2 and value.device == images.device for value in fields.values())
    assert fields["labels"].dtype == torch.int64 and fields["label_weights"].dtype == torch.float32
    partner = fields["mix_partner"]
    assert torch.all(partner != fields["identity"]) and torch.all((partner >= 0) & (partner < 4))
    torch.testing.assert_close(fields["label_weights"].sum(1), torch.ones(2))
    # Rendered landmarks sit near the crop template (expression, face shape and detector noise move them).
    template = torch.tensor([[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366],
                             [33.5493, 92.3655], [62.7299, 92.2041]])
    assert (fields["landmarks5"] - template).norm(dim=-1).mean() < 4.0


def test_explicit_partners_and_ratios(generator: FaceGenerator) -> None:
    shape, appearance = generator.identity_coefficients([0, 1, 2])
    _, fields = generator.render([0, 0, 0], [1, 1, 1], partners=[1, 2, 1], phis=[1.0, 0.0, 0.25])
    got = fields["identity_shape"].cpu().numpy()
    np.testing.assert_array_equal(got[0], shape[0])  # phi = 1: exactly the primary
    np.testing.assert_array_equal(got[1], shape[2])  # phi = 0: exactly the partner
    np.testing.assert_allclose(got[2], 0.25 * shape[0] + 0.75 * shape[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fields["appearance"].cpu().numpy()[2], 0.25 * appearance[0] + 0.75 * appearance[1],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fields["labels"].cpu().numpy(), [[0, 1], [0, 2], [0, 1]])
    np.testing.assert_allclose(fields["label_weights"].cpu().numpy(), [[1, 0], [0, 1], [0.25, 0.75]])


def test_unmixed_and_phi_one_render_the_same_image(generator: FaceGenerator) -> None:
    mixed, _ = generator.render([3], [0], partners=[1], phis=[1.0])
    plain, fields = generator.render([3], [0], partners=[3], phis=[1.0])
    assert torch.equal(mixed, plain)
    assert fields["labels"].tolist() == [[3, 3]] and fields["label_weights"].tolist() == [[1.0, 0.0]]


def test_attack_set_keeps_the_primary_label(generator: FaceGenerator) -> None:
    attack = FaceGenerator(CONFIG.with_overrides(["mixup.mode=attack", "mixup.phi=0.7"]), "cpu", model=generator.model)
    _, fields = attack.render([0, 3], [0, 1])
    identity = fields["identity"]
    assert torch.equal(fields["labels"], torch.stack([identity, identity], 1))
    assert fields["label_weights"].tolist() == [[1.0, 0.0]] * 2
    assert torch.all(fields["mix_partner"] != identity)
    torch.testing.assert_close(fields["mix_phi"], torch.full((2,), 0.7))
    shape, _ = attack.identity_coefficients([0, 1, 2, 3])
    partner = fields["mix_partner"].cpu().numpy()
    expected = 0.7 * shape[[0, 3]] + 0.3 * shape[partner]
    np.testing.assert_allclose(fields["identity_shape"].cpu().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_preview_grid_and_mixup_strip(generator: FaceGenerator) -> None:
    grid = identity_grid(generator, 1, 2)
    assert grid.shape == (112, 2 * 96 + 2, 3)
    strip = mixup_strip(generator, 0, 1, steps=2)
    assert strip.shape == (112, 2 * 96 + 2, 3)
    ends = [strip[:, :96].astype(int), strip[:, -96:].astype(int)]
    assert np.abs(ends[0] - ends[1]).mean() > 1.0  # the two identities differ


def test_mismatched_lengths_are_refused(generator: FaceGenerator) -> None:
    from synface.errors import DataError

    with pytest.raises(DataError, match="sample_ids: 1 values for 2 identities"):
        generator.render([0, 1], [0])
    with pytest.raises(DataError, match="phis: 3 values for 2 identities"):
        generator.render([0, 1], [0, 0], partners=[1, 0], phis=[1.0, 0.5, 0.5])


@pytest.mark.slow
def test_sampling_workers_draw_the_same_factors(generator: FaceGenerator) -> None:
    with FaceGenerator(CONFIG, "cpu", model=generator.model, sampling_workers=2) as parallel:
        identity, sample = np.arange(40) % 4, np.arange(40) // 4 % 2
        pending = parallel.sample_async(identity, sample)
        expected = generator.sample(identity, sample)
        got = pending.result()
    for name in ("identity", "sample_index", "mix_partner", "mix_phi", "expression", "pose", "light", "camera",
                 "landmark_jitter", "background", "quality"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


@pytest.mark.slow
def test_render_threads_do_not_change_the_images(generator: FaceGenerator) -> None:
    # 17 images: a full CPU chunk plus a short one, drawn by one thread or by three.
    threads = torch.get_num_threads()
    factors = generator.sample(np.arange(17) % 4, np.arange(17) // 4 % 2)
    with FaceGenerator(CONFIG, "cpu", model=generator.model, render_threads=1) as single, \
            FaceGenerator(CONFIG, "cpu", model=generator.model, render_threads=3) as triple:
        assert (single.render_threads, triple.render_threads) == (1, 3)
        one, fields_one = single.render_factors(factors)
        three, fields_three = triple.render_factors(factors)
    assert torch.equal(one, three)
    assert torch.equal(fields_one["landmarks5"], fields_three["landmarks5"])
    assert torch.get_num_threads() == threads  # the caller's setting is left alone


def test_benchmark_reports_wall_and_cpu_throughput(generator: FaceGenerator) -> None:
    from synface.generate.bench import default_benchmark_config, run_generate_benchmark

    assert default_benchmark_config(["face_model=builtin", "render.supersample=1"]).face_model == "builtin"
    result = run_generate_benchmark(batch_size=2, iterations=1, warmup=0, config=CONFIG, generator=generator)
    assert result["images_per_second"] > 0 and result["images_per_cpu_second"] > 0
    assert result["batch_size"] == 2 and result["render_threads"] == generator.render_threads
