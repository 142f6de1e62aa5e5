"""`synface experiment` and `synface demo` on the command line: listing, dry runs and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from synface.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_shows_suites_and_presets(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "experiment", "--list")
    assert code == 0
    for name in ("table1", "table2", "table3", "fig3", "fig5", "fig6", "fig7", "tiny", "small", "paper"):
        assert f"  {name} " in out


@pytest.mark.parametrize("argv, message", [
    (["experiment", "table9"], "unknown suite 'table9'"),
    (["experiment", "table3", "--preset", "huge"], "unknown preset 'huge'"),
    (["experiment", "table3", "train.epochs=zero"], "train.epochs: expected an integer"),
    (["experiment", "table1", "--real-data", "/no/such/cfp"], "--real-data /no/such/cfp: folder not found"),
    (["experiment", "table3", "--lfw", "/no/such/lfw"], "--lfw /no/such/lfw: folder not found"),
    (["experiment", "table1"], "suite table1 needs --real-data CFP_DIR"),
    (["experiment", "table3", "suite.layouts=[1_1]"], "layouts"),
])
def test_bad_input_fails_before_any_work(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         argv: list[str], message: str) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, *argv, "--out", str(out))
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("synface: error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert not (out / "cache").exists()


def test_out_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "experiment", "table3")
    assert code == 2 and "--out DIR is required" in err


def test_dry_run_plans_without_running(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "experiment", "table3", "fig6", "--out", str(tmp_path), "--dry-run")
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("todo")]
    kinds = [line.split()[1].rsplit("-", 1)[0] for line in lines]
    # Table 3: one superset for the 9 rows without IM + 9 IM sets, 18 models; Fig. 6: 6 sets and models;
    # one headline test set, used by every model.
    assert kinds.count("generate") == 16 and kinds.count("train") == 24 and kinds.count("synlfw") == 1
    assert kinds.count("evaluate") == 24


def test_paper_dry_run_prints_torchrun_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "experiment", "fig7", "--preset", "paper", "--out", str(tmp_path), "--dry-run",
                           "launcher.nproc_per_node=8")
    assert code == 0
    commands = [line.strip() for line in out.splitlines() if line.strip().startswith("torchrun")]
    assert len(commands) == 8
    assert all("--nproc_per_node 8 -m synface.cli train" in c and c.endswith("--resume") for c in commands)


def test_demo_rejects_bad_sizes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "demo", "--out", str(tmp_path), "--test-identities", "5")
    assert code == 2 and "test_identities" in err
    code, _, err = run_cli(capsys, "demo", "--out", str(tmp_path), "--cfp", str(tmp_path / "missing"))
    assert code == 2 and "folder not found" in err
