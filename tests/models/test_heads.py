"""Margin heads: the soft-label formula against a slow reference, guards, validation, sharding."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import distributed as dist

from synface.errors import SynfaceError
from synface.models import (
    CombinedMarginHead,
    ShardedMarginHead,
    create_head,
    list_heads,
)
from synface.models.sharded_head import shard_range

D, C, B = 12, 7, 10

HEAD_CONFIGS = {
    "arcface": ("arcface", {}),
    "arcface_easy": ("arcface", {"guard": "easy"}),
    "arcface_monotonic": ("arcface", {"guard": "monotonic"}),
    "cosface": ("cosface", {}),
    "sphereface": ("sphereface", {}),
    "sphereface_fallback": ("sphereface", {"guard": "fallback"}),
    "combined": ("combined", {}),
    "combined_unguarded": ("combined", {"guard": "none", "s": 16.0}),
}


# -- slow reference: the reference-notes formula, one sample and one column at a time ----
def reference_target(cos: torch.Tensor, head: CombinedMarginHead) -> torch.Tensor:
    """``cos(m1 theta + m2) - m3`` for one scalar, with each guard written out by branches."""
    m1, m2, m3 = head.m1, head.m2, head.m3
    if m1 == 1.0 and m2 == 0.0:
        return cos - m3
    c = torch.clamp(cos, -1 + head.eps, 1 - head.eps)
    angle = m1 * torch.acos(c) + m2
    if head.guard == "fallback" and angle.item() > math.pi:
        return c - m2 * math.sin(m2) - m3
    if head.guard == "monotonic":
        k = math.floor(angle.item() / math.pi)
        return (-1) ** k * torch.cos(angle) - 2 * k - m3
    if head.guard == "easy" and c.item() <= 0:
        return c - m3
    return torch.cos(angle) - m3


def reference_arc(cosines: list[torch.Tensor], target: int, head: CombinedMarginHead) -> torch.Tensor:
    """Arc(f, c): ``s * cos`` everywhere except the margin on column ``target``."""
    return torch.stack(
        [head.s * (reference_target(c, head) if j == target else c) for j, c in enumerate(cosines)]
    )


def reference_loss(head, embeddings, a, b, w_a, r=None, lam=1.0):
    """out = w_a Arc(f, a) + w_b Arc(f, b); out = lam out + (1 - lam) Arc(f, r);
    loss = lam [mean(w_a CE(out, a)) + mean(w_b CE(out, b))] + (1 - lam) mean(CE(out, r))."""
    ce_a, ce_b, ce_r, outs = [], [], [], []
    for i in range(embeddings.shape[0]):
        f = embeddings[i] / embeddings[i].norm()
        cosines = [torch.dot(f, head.weight[j] / head.weight[j].norm()) for j in range(head.num_classes)]
        w_b = 1.0 - w_a[i]
        out = w_a[i] * reference_arc(cosines, a[i], head) + w_b * reference_arc(cosines, b[i], head)
        if r is not None:
            out = lam * out + (1 - lam) * reference_arc(cosines, r[i], head)
        log_probabilities = torch.log_softmax(out, dim=0)
        ce_a.append(w_a[i] * -log_probabilities[a[i]])
        ce_b.append(w_b * -log_probabilities[b[i]])
        if r is not None:
            ce_r.append(-log_probabilities[r[i]])
        outs.append(out)
    loss = lam * (torch.stack(ce_a).mean() + torch.stack(ce_b).mean())
    if r is not None:
        loss = loss + (1 - lam) * torch.stack(ce_r).mean()
    return loss, torch.stack(outs)


# -- batches --------------------------------------------------------------------------
def make_batch(head: CombinedMarginHead, kind: str, lam: float = 0.6, seed: int = 1):
    """Semantic labels (a, b, w_a, r, lam), their (B, K) columns, and embeddings.

    Half the rows point away from their class centre, so the pi guard triggers.
    """
    generator = torch.Generator().manual_seed(seed)
    a = torch.randint(0, C, (B,), generator=generator)
    if kind in ("plain", "dm"):
        b, w_a = a.clone(), torch.ones(B, dtype=torch.float64)
    else:
        b = torch.randint(0, C, (B,), generator=generator)
        b[:2] = a[:2]  # coinciding columns: weights add
        w_a = torch.tensor([0.3, 1.0, 0.0, 1.0, 0.0, 0.45, 0.8, 0.55, 0.05, 0.5], dtype=torch.float64)
    embeddings = torch.randn(B, D, generator=generator, dtype=torch.float64)
    centres = F.normalize(head.weight.detach().double(), dim=1)
    opposite = -centres[a[::2]] * 3 + 0.15 * torch.randn(B // 2, D, generator=generator, dtype=torch.float64)
    embeddings[::2] = opposite
    targets, weights = torch.stack([a, b], 1), torch.stack([w_a, 1 - w_a], 1)
    r = None
    if kind in ("dm", "im_dm"):
        r = torch.randint(0, C, (B,), generator=generator)
        r[3] = a[3]
        targets = torch.cat([targets, r[:, None]], 1)
        weights = torch.cat([lam * weights, torch.full((B, 1), 1 - lam, dtype=torch.float64)], 1)
    semantic = (
        a.tolist(),
        b.tolist(),
        w_a.tolist(),
        None if r is None else r.tolist(),
        1.0 if r is None else lam,
    )
    return embeddings, targets, weights, semantic


def compare(head: CombinedMarginHead, embeddings, targets, weights, semantic) -> None:
    """Loss, logits and both gradients of ``head`` against the reference, in float64."""
    a, b, w_a, r, lam = semantic
    head, embeddings, weights = head.double(), embeddings.double(), weights.double()
    x_head = embeddings.clone().requires_grad_()
    output = head(x_head, targets, weights)
    output.loss.backward()
    grad_weight_head = head.weight.grad.clone()
    head.weight.grad = None
    x_reference = embeddings.clone().requires_grad_()
    loss, out = reference_loss(head, x_reference, a, b, w_a, r, lam)
    loss.backward()
    torch.testing.assert_close(output.loss, loss, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(output.logits, out, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(x_head.grad, x_reference.grad, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(grad_weight_head, head.weight.grad, rtol=1e-8, atol=1e-10)
    head.weight.grad = None


@pytest.mark.parametrize("config", sorted(HEAD_CONFIGS))
@pytest.mark.parametrize("kind", ["plain", "im", "dm", "im_dm"])
def test_soft_label_loss_and_gradients_match_reference(config: str, kind: str) -> None:
    name, kwargs = HEAD_CONFIGS[config]
    head = create_head(name, D, C, **kwargs)
    embeddings, targets, weights, semantic = make_batch(head, kind, lam=0.35 if kind == "im_dm" else 0.6)
    compare(head, embeddings, targets, weights, semantic)


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_domain_mixup_extreme_ratios(lam: float) -> None:
    head = create_head("arcface", D, C)
    compare(head, *make_batch(head, "im_dm", lam=lam))


def test_plain_labels_in_every_form_agree() -> None:
    head = create_head("arcface", D, C)
    embeddings, targets, weights, semantic = make_batch(head, "plain")
    y = targets[:, 0]
    two_columns = head(embeddings, targets, weights)
    one_column = head(embeddings, y[:, None], torch.ones(B, 1))
    hard = head(embeddings, y)
    for other in (one_column, hard):
        torch.testing.assert_close(other.loss, two_columns.loss)
        torch.testing.assert_close(other.logits, two_columns.logits)
    compare(head, embeddings, y[:, None], torch.ones(B, 1), semantic)


def test_pi_guard_is_exercised_by_the_batches() -> None:
    head = create_head("arcface", D, C)
    embeddings, targets, _, _ = make_batch(head, "plain")
    cosine = head(embeddings, targets[:, 0]).cosine.detach()
    theta = torch.acos(cosine.gather(1, targets[:, :1]).squeeze(1))
    assert (theta + head.m2 > math.pi).sum() >= 3
    assert (theta + head.m2 < math.pi).sum() >= 3


def test_arcface_known_values() -> None:
    head = create_head("arcface", 4, 3)
    with torch.no_grad():
        head.weight.copy_(torch.eye(3, 4))
    angle = 2.9  # theta + 0.5 > pi: ArcFace's fallback
    embeddings = torch.tensor(
        [[math.cos(0.3), 0, math.sin(0.3), 0], [math.cos(angle), math.sin(angle), 0, 0]]
    )
    logits = head(embeddings, torch.tensor([0, 0])).logits
    expected = torch.tensor([30 * math.cos(0.3 + 0.5), 0.0, 30 * math.sin(0.3)])
    torch.testing.assert_close(logits[0], expected, rtol=1e-5, atol=1e-4)
    fallback = math.cos(angle) - 0.5 * math.sin(0.5)
    torch.testing.assert_close(logits[1, 0], torch.tensor(30 * fallback), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(logits[1, 1], torch.tensor(30 * math.sin(angle)), rtol=1e-5, atol=1e-4)


def test_monotonic_guard_is_continuous_and_decreasing() -> None:
    head = create_head("sphereface", 4, 3, m=2.5)
    cosine = torch.cos(torch.linspace(0.0, math.pi, 2001))
    values = head.target_logit(cosine)
    assert torch.all(values[1:] <= values[:-1] + 1e-6)
    assert torch.max((values[1:] - values[:-1]).abs()) < 0.02


def test_fp32_under_autocast() -> None:
    head = create_head("arcface", D, C)
    embeddings, targets, weights, _ = make_batch(head, "im")
    embeddings = embeddings.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = head(embeddings, targets, weights)
    assert output.loss.dtype == output.logits.dtype == output.cosine.dtype == torch.float32
    torch.testing.assert_close(output.loss, head(embeddings.float(), targets, weights).loss)


@pytest.mark.parametrize(
    ("targets", "weights", "message"),
    [
        (torch.tensor([[0, 7]]), torch.tensor([[0.5, 0.5]]), "target 7 is outside"),
        (torch.tensor([[-1, 2]]), torch.tensor([[0.5, 0.5]]), "target -1 is outside"),
        (torch.tensor([[0, 1]]), torch.tensor([[0.5, 0.4]]), "sum to 1"),
        (torch.tensor([[0, 1]]), torch.tensor([[1.5, -0.5]]), ">= 0"),
        (torch.tensor([[0, 1]]), torch.tensor([[0.5, 0.5, 0.0]]), "must both be"),
        (torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.5]]), "integers"),
    ],
)
def test_bad_labels_raise(targets, weights, message) -> None:
    head = create_head("arcface", D, C)
    with pytest.raises(SynfaceError, match=message):
        head(torch.randn(1, D), targets, weights)


def test_bad_embeddings_and_settings_raise() -> None:
    head = create_head("cosface", D, C)
    with pytest.raises(SynfaceError, match=r"embeddings must be \(B, 12\)"):
        head(torch.randn(2, D + 1), torch.tensor([0, 1]))
    with pytest.raises(SynfaceError, match="weights are required"):
        head(torch.randn(1, D), torch.tensor([[0, 1]]))
    with pytest.raises(SynfaceError, match="unknown head 'arc'"):
        create_head("arc", D, C)
    with pytest.raises(SynfaceError, match="guard"):
        create_head("arcface", D, C, guard="clip")
    with pytest.raises(SynfaceError, match="easy"):
        create_head("sphereface", D, C, m=4.0, guard="easy")


def test_create_head_defaults_and_margin_alias() -> None:
    assert list_heads() == ["arcface", "combined", "cosface", "sphereface"]
    arcface = create_head("arcface", D, C)
    assert (arcface.s, arcface.m1, arcface.m2, arcface.m3) == (30.0, 1.0, 0.5, 0.0)
    assert create_head("cosface", D, C, m=0.4).m3 == 0.4
    assert create_head("sphereface", D, C, m=4, m2=None).m1 == 4.0
    with pytest.raises(SynfaceError, match="m1, m2 and m3"):
        create_head("combined", D, C, m=0.2)
    assert tuple(arcface.weight.shape) == (C, D)


def test_sharded_head_without_process_group_is_the_plain_head() -> None:
    torch.manual_seed(5)
    plain = create_head("arcface", D, C)
    torch.manual_seed(5)
    sharded = create_head("arcface", D, C, sharded=True)
    assert isinstance(sharded, ShardedMarginHead) and sharded.world_size == 1
    torch.testing.assert_close(sharded.weight, plain.weight, rtol=0, atol=0)
    embeddings, targets, weights, _ = make_batch(plain, "im_dm")
    torch.testing.assert_close(
        sharded(embeddings, targets, weights).loss, plain(embeddings, targets, weights).loss
    )


def test_shard_ranges_cover_all_classes() -> None:
    for classes, world in [(9, 2), (10, 3), (5, 5), (100_003, 8)]:
        ranges = [shard_range(classes, world, rank) for rank in range(world)]
        assert ranges[0][0] == 0 and ranges[-1][1] == classes
        assert all(left[1] == right[0] for left, right in itertools.pairwise(ranges))
        assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1


# -- model parallel: 2 CPU processes on gloo -----------------------------------------
def _sharded_worker(rank: int, world: int, init_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        sizes = [6, 4]  # unequal per-rank batches
        rows = slice(sum(sizes[:rank]), sum(sizes[: rank + 1]))
        for config in ("arcface", "cosface", "sphereface", "combined"):
            name, kwargs = HEAD_CONFIGS[config]
            torch.manual_seed(3)
            plain = create_head(name, D, 9, **kwargs)
            torch.manual_seed(3)
            sharded = create_head(name, D, 9, sharded=True, scale_embedding_grad=False, **kwargs)
            start, stop = sharded.class_start, sharded.class_stop
            torch.testing.assert_close(sharded.weight, plain.weight[start:stop], rtol=0, atol=0)
            embeddings, targets, weights, _ = make_batch(plain, "im_dm", lam=0.4, seed=11)
            full = embeddings.clone().requires_grad_()
            expected = plain(full, targets, weights)
            expected.loss.backward()
            local = embeddings[rows].clone().requires_grad_()
            output = sharded(local, targets[rows], weights[rows])
            output.loss.backward()
            torch.testing.assert_close(output.loss, expected.loss, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(output.logits, expected.logits[:, start:stop], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(
                sharded.weight.grad, plain.weight.grad[start:stop], rtol=1e-4, atol=1e-7
            )
            torch.testing.assert_close(local.grad, full.grad[rows], rtol=1e-4, atol=1e-7)
            torch.testing.assert_close(sharded.gather_weight(), plain.weight.detach(), rtol=0, atol=0)
            sharded.scale_embedding_grad = True
            scaled = embeddings[rows].clone().requires_grad_()
            sharded(scaled, targets[rows], weights[rows]).loss.backward()
            torch.testing.assert_close(scaled.grad, world * full.grad[rows], rtol=1e-4, atol=1e-7)
        # A bad label on one rank raises on every rank instead of leaving the others waiting.
        bad_targets = targets[rows].clone()
        if rank == 1:
            bad_targets[0, 0] = 99
        expected_message = "target 99 is outside" if rank == 1 else r"invalid labels on rank\(s\) \[1\]"
        with pytest.raises(SynfaceError, match=expected_message):
            sharded(embeddings[rows], bad_targets, weights[rows])
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_sharded_head_matches_plain_head_on_two_processes(tmp_path) -> None:
    torch.multiprocessing.spawn(_sharded_worker, args=(2, str(tmp_path / "rendezvous")), nprocs=2, join=True)
