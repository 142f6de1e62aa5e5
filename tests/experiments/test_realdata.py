"""Real data in experiments: CFP recognised, training identities kept off the test folds, test pair subsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synface.cli import main
from synface.data.real import cfp_split
from synface.errors import DataError
from synface.experiments.realdata import (
    cfp_identity,
    cfp_side_files,
    cfp_train_files,
    inspect_cfp,
    load_test_pairs,
    rebase_pairs,
    relative_images,
)

pytestmark = pytest.mark.shared


@pytest.fixture
def cfp(shared_dir: Path):
    return inspect_cfp(shared_dir / "data" / "cfp")


def test_raw_cfp_is_recognised(cfp) -> None:
    assert cfp.kind == "cfp" and cfp.state == "raw" and cfp.pairs is None
    assert "Protocol/Split/FF/01/same.txt" in cfp_side_files(cfp.root)


def test_not_cfp_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "Data").mkdir()
    with pytest.raises(DataError, match="no Data/Images"):
        inspect_cfp(tmp_path)


def test_training_images_never_come_from_test_folds(cfp) -> None:
    _, held_out = cfp_split(cfp.root, (6, 7, 8, 9, 10))
    files = cfp_train_files(cfp, (6, 7, 8, 9, 10), identities=8, samples=3)
    identities = [cfp_identity(f) for f in files]
    assert len(files) == 24 and len(set(identities)) == 8
    assert not set(identities) & set(held_out)
    assert identities == sorted(identities) and files[0].endswith("frontal/01.jpg")
    assert len(cfp_train_files(cfp, (6, 7, 8, 9, 10), 0, 0)) == 250 * 14


def test_test_pairs_come_from_the_held_out_folds_only(cfp) -> None:
    _, held_out = cfp_split(cfp.root, (6, 7, 8, 9, 10))
    pairs = load_test_pairs(cfp, "cfp-fp", [6, 7, 8, 9, 10], per_fold=3)
    assert pairs.num_pairs == 5 * 6 and pairs.num_folds == 5
    assert pairs.issame.reshape(5, 6).tolist() == [[True] * 3 + [False] * 3] * 5
    names = {cfp_identity(f) for f in relative_images(pairs, cfp.root)}
    assert names <= set(held_out)
    full = load_test_pairs(cfp, "cfp-ff", [6, 7, 8, 9, 10], per_fold=0)
    assert full.num_pairs == 5 * 700


def test_rebased_pairs_read_the_aligned_copy(cfp, tmp_path: Path) -> None:
    pairs = load_test_pairs(cfp, "cfp-ff", [6, 7], per_fold=1)
    for relative in relative_images(pairs, cfp.root):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).with_suffix(".png").write_bytes(b"")
    rebased = rebase_pairs(pairs, cfp.root, tmp_path)
    assert all(str(image).startswith(str(tmp_path)) and str(image).endswith(".png") for image in rebased.images)
    np.testing.assert_array_equal(rebased.pairs, pairs.pairs)


def test_real_subsets_larger_than_the_selection_are_refused(capsys: pytest.CaptureFixture[str], cfp,
                                                             tmp_path: Path) -> None:
    code = main(["experiment", "table2", "--out", str(tmp_path), "--real-data", str(cfp.root), "--dry-run",
                 "suite.real=[{paper: 1K_10, identities: 20, samples: 2}]"])
    assert code == 2
    assert "exceeds the preset's real training selection" in capsys.readouterr().err


def test_identical_steps_are_shared_between_suites(capsys: pytest.CaptureFixture[str], cfp, tmp_path: Path) -> None:
    """RealFace (Table 1, Fig. 3's embedding model, Fig. 5) and Syn_6_3 with IM (Table 2, Fig. 5) are planned once."""
    code = main(["experiment", "table1", "table2", "fig3", "fig5", "--out", str(tmp_path), "--real-data",
                 str(cfp.root), "--dry-run"])
    assert code == 0
    labels = [line.split(None, 2)[2] for line in capsys.readouterr().out.splitlines() if line.startswith("todo")]
    assert labels.count("train RealFace (CFP training folds)") == 1
    assert labels.count("train Syn_6_3 (IM)") == 1 and labels.count("Syn_6_3 (IM)") == 1


def test_demo_skips_raw_cfp_without_mtcnn_and_says_how(cfp) -> None:
    from synface.experiments.demo import DemoConfig, plan_demo

    planner, plan = plan_demo(DemoConfig(), cfp=cfp.root)
    assert planner.cfp is None
    assert any("synface assets install mtcnn" in note for note in planner.notes)
    assert all(step.kind != "align" for step in plan.steps)
