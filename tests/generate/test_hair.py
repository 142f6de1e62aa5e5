"""Hair shell: mesh extension, per-identity volume, continuity under mixing, and that hidden hair stays hidden."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synface.errors import ConfigError
from synface.generate.appearance import AppearanceModel
from synface.generate.appearance_sampling import PARAM_NAMES, mean_appearance
from synface.generate.facemodel import FaceModel
from synface.generate.hair import HairConfig, HairShell, neighbour_table
from synface.generate.render import FaceRenderer, RenderConfig


@pytest.fixture(scope="module")
def shell(face_model: FaceModel) -> HairShell:
    """A hair shell on each face model this checkout can provide."""
    return HairShell(face_model, AppearanceModel(face_model))


def person(**values: float) -> torch.Tensor:
    """(1, Ka) the average appearance with some parameters replaced."""
    row = mean_appearance().copy()
    for name, value in values.items():
        row[PARAM_NAMES.index(name)] = value
    return torch.from_numpy(row)[None]


def test_neighbour_table_matches_a_slow_reference() -> None:
    triangles = np.array([[0, 1, 2], [0, 2, 3], [3, 2, 4], [5, 6, 7]])
    table, degree = neighbour_table(triangles, 9)
    expected: list[set[int]] = [set() for _ in range(9)]
    for triangle in triangles.tolist():
        for a in triangle:
            expected[a].update(b for b in triangle if b != a)
    assert table.shape[0] == 9 and degree.tolist() == [len(s) for s in expected]
    for vertex, neighbours in enumerate(expected):
        row = table[vertex]
        assert set(row[row < 9].tolist()) == neighbours and (row[len(neighbours):] == 9).all()


@pytest.mark.parametrize(("override", "field"), [
    (["volume=[2.0, 1.0]"], "volume"), (["sink=0"], "sink"), (["clumping=1.5"], "clumping"),
    (["length=-1"], "length"), (["beard=[0.5, 11]"], "beard"),
])
def test_bad_config_values_name_the_field(override: list[str], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        HairConfig().with_overrides(override)


def test_extended_model_copies_its_source_vertices(shell: HairShell) -> None:
    extended, base = shell.model, shell.base_vertices
    count = shell.num_vertices
    assert extended.num_vertices == base + count and count > 100
    extended.check()
    source = shell.source
    torch.testing.assert_close(extended.identity_basis[:, base:], extended.identity_basis[:, source])
    torch.testing.assert_close(extended.expression_basis[:, base:], extended.expression_basis[:, source])
    assert torch.equal(extended.regions[base:], extended.regions[source])
    new_triangles = extended.triangles[len(extended.triangles) - (extended.triangles >= base).all(1).sum():]
    assert (new_triangles >= base).all() and len(new_triangles) > 100
    # At rest the shell lies `sink` under the skin, along its push-out direction.
    depth = (extended.vertices[source] - extended.vertices[base:]).norm(dim=1)
    torch.testing.assert_close(depth, torch.full_like(depth, shell.config.sink), atol=1e-5, rtol=0)


def test_volume_follows_the_parameters(shell: HairShell) -> None:
    params = torch.cat([person(hair_volume=0.0), person(hair_volume=1.0), person(hair_volume=1.0, hair_length=1.0),
                        person(beard=1.0, moustache=1.0, beard_extent=1.0)])
    offset, lift = shell.offsets(params)  # (4, U), (4, Nd)
    config = shell.config
    assert offset.shape == (4, shell.num_vertices) and lift.shape == (4, len(shell.appearance.beard_vertices))
    assert offset.min() >= -config.sink - 1e-6 and lift.min() >= 0.0
    crown = offset[1] > 0.5 * config.volume[1]
    assert crown.sum() > 20, "a full head of hair stands well off the scalp"
    assert (offset[0, crown] < offset[1, crown]).all() and offset[0].max() < 1.5 * config.volume[0]
    assert (offset[2] >= offset[1] - 1e-6).all() and (offset[2] > offset[1] + 0.5).sum() > 20, "long hair falls lower"
    assert lift[3].max() > 0.5 * config.beard[1] and lift[:3].max() < 1e-6


def test_mixing_blends_volume_continuously(shell: HairShell) -> None:
    first = person(hair_volume=1.0, hair_length=1.0, hair_curl=1.0, hair_fringe=1.0)
    second = person(hair_volume=0.0, hair_baldness=1.0, beard=1.0, moustache=1.0, beard_extent=1.0)
    phis = torch.linspace(0.0, 1.0, 21)[:, None]
    blend = torch.cat(shell.offsets(phis * first + (1.0 - phis) * second), 1)  # (21, U + Nd)
    torch.testing.assert_close(blend[[0, -1]], torch.cat(shell.offsets(torch.cat([second, first])), 1),
                               atol=1e-5, rtol=0)
    # A switch would move a vertex by its whole thickness at once; blending moves it over many steps.
    steps = (blend[1:] - blend[:-1]).abs().amax(0)  # largest move of each vertex
    spread = blend.amax(0) - blend.amin(0)
    assert steps.max() < 0.75, "a 0.05 step of phi makes the hair jump"
    movers = spread > 1.0
    assert movers.sum() > 20 and (steps[movers] < 0.25 * spread[movers]).all()


def test_apply_is_batch_independent_and_shaped(shell: HairShell) -> None:
    appearance = shell.appearance
    params = torch.from_numpy(np.stack([appearance.sample(np.random.default_rng([5, 0, i])) for i in range(3)]))
    albedo = appearance.albedo(params)
    base = shell.model.vertices[:shell.base_vertices]
    vertices = base[None].repeat(3, 1, 1)
    out_vertices, diffuse, specular = shell.apply(vertices, albedo, params)
    total = shell.model.num_vertices
    assert out_vertices.shape == (3, total, 3) and diffuse.shape == (3, total, 3) and specular.shape == (3, total)
    assert diffuse.min() >= 0 and diffuse.max() <= 1 and specular.min() >= 0 and specular.max() <= 1
    beard = torch.zeros(shell.base_vertices, dtype=torch.bool)
    beard[shell.appearance.beard_vertices] = True
    assert torch.equal(out_vertices[:, :shell.base_vertices][:, ~beard], vertices[:, ~beard])
    alone = shell.apply(vertices[1:2], appearance.albedo(params[1:2]), params[1:2])
    for together, single in zip((out_vertices, diffuse, specular), alone):
        torch.testing.assert_close(together[1:2], single, atol=1e-5, rtol=0)


def _render(model: FaceModel, vertices: torch.Tensor, albedo: torch.Tensor) -> torch.Tensor:
    batch = vertices.shape[0]
    light = torch.zeros(batch, 27)
    light[:, [0, 9, 18]] = 1.0
    light[:, [2, 11, 20]] = 0.4
    pose = torch.tensor([[0.0, 0.0, 0.0], [40.0, -10.0, 5.0]])[:batch]
    renderer = FaceRenderer(model, RenderConfig(supersample=1))
    return renderer.render(vertices, albedo, None, light, pose, torch.full((batch,), 100.0)).image


@pytest.mark.slow
def test_hidden_shell_leaves_the_image_unchanged_and_hair_changes_the_outline(shell: HairShell) -> None:
    base_count = shell.base_vertices
    extended = shell.model
    base = FaceModel(**{**extended.__dict__, "vertices": extended.vertices[:base_count],
                        "triangles": extended.triangles[(extended.triangles < base_count).all(1)],
                        "identity_basis": extended.identity_basis[:, :base_count],
                        "expression_basis": extended.expression_basis[:, :base_count],
                        "regions": extended.regions[:base_count], "uvs": None, "_hash": None})
    grey = torch.full((2, extended.num_vertices, 3), 0.5)
    grey[:, base_count:] = torch.tensor([0.05, 0.04, 0.03])  # dark hair: any leak shows
    plain = _render(base, base.vertices[None].repeat(2, 1, 1), grey[:, :base_count])
    hidden = _render(extended, extended.vertices[None].repeat(2, 1, 1), grey)
    leaked = (plain - hidden).abs().amax(1) > 2.0 / 255.0  # (2, H, W)
    assert leaked.float().mean() < 0.002, "the shell shows through where there is no hair"
    params = person(hair_volume=1.0, hair_length=1.0).repeat(2, 1)
    appearance = shell.appearance
    vertices, _, _ = shell.apply(base.vertices[None].repeat(2, 1, 1), appearance.albedo(params), params)
    haired = _render(extended, vertices, grey)
    assert ((haired - plain).abs().amax(1) > 0.1).float().mean() > 0.03, "hair volume changes the picture"

