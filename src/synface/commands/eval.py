"""`synface eval`: face verification accuracy of a checkpoint on LFW, CFP, .bin files or pair lists."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from synface.errors import ConfigError

logger = logging.getLogger(__name__)

PROTOCOLS = ("lfw", "lfw-view1", "cfp-ff", "cfp-fp", "bin", "pairs", "synthetic")
RULES = ("synface", "arcface", "tpr-fpr")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    parser = subparsers.add_parser(
        "eval",
        help="verification accuracy (10-fold), AUC, EER, TAR@FAR of a model on pair protocols",
        description="Embed every image of each protocol once and report the 10-fold accuracy "
        "(threshold chosen on 9 folds), AUC, EER and TAR@FAR. Images must be aligned crops of the "
        "model's input size (synface align). --protocol, --data and --pairs repeat: the i-th "
        "--data/--pairs goes with the i-th --protocol, or a single one serves them all.",
    )
    parser.add_argument("--model", required=True, help="run folder (its latest checkpoint) or checkpoint folder")
    parser.add_argument("--protocol", action="append", required=True, choices=PROTOCOLS,
                        help="lfw (pairs.txt), lfw-view1 (pairsDevTest.txt), cfp-ff, cfp-fp, "
                        "bin (insightface .bin), pairs (CSV path1,path2,label[,fold]), "
                        "synthetic (a generated dataset)")
    parser.add_argument("--data", action="append", default=[],
                        help="image folder, CFP root, .bin file or dataset folder")
    parser.add_argument("--pairs", action="append", default=[],
                        help="pairs file (LFW lists, pairs CSV) or CFP Protocol folder")
    parser.add_argument("--folds", type=_fold_list, default=None, metavar="LIST",
                        help="evaluate these 1-based folds only, e.g. 6-10 (CFP identities of folds "
                        "1-5 used for training); thresholds are chosen across the kept folds")
    parser.add_argument("--rule", action="append", choices=(*RULES, "all"),
                        help="threshold rule (repeatable): synface = SynFace's (cosine, no flip), "
                        "arcface = arcface_torch's (flip, squared L2), tpr-fpr = FaceX-Zoo's; "
                        "default synface")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="add the mirrored image's embedding (default: per rule)")
    parser.add_argument("--crop", choices=["synface"], default=None,
                        help="cut 112x96 SynFace crops (columns 8..103) out of 112x112 ArcFace crops")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    parser.add_argument("--amp", action="store_true", help="autocast the forward pass")
    parser.add_argument("--synthetic-pairs", type=int, default=6000,
                        help="pairs drawn for the synthetic protocol (10 folds, half positive)")
    parser.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    parser.add_argument("--roc", type=Path, default=None, help="draw the ROC curves to this PNG")
    parser.add_argument("--roc-points", action="store_true",
                        help="also store every ROC point (fpr, tpr, threshold) in the --out JSON")
    parser.set_defaults(func=run)


def _per_protocol(values: list[str], count: int, flag: str) -> list[str | None]:
    """Pair the repeated ``flag`` values with ``count`` protocols (none, one for all, or one each)."""
    if not values:
        return [None] * count
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise ConfigError(f"{flag}: given {len(values)} times for {count} protocols; "
                          f"give it once for all or once per --protocol")
    return list(values)


def _fold_list(text: str) -> list[int]:
    """``6-10`` or ``1,3,5`` (or a mix) -> sorted 1-based fold numbers."""
    folds: set[int] = set()
    try:
        for part in text.split(","):
            low, _, high = part.partition("-")
            folds.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fold list such as 6-10 or 1,3,5") from None
    if not folds or min(folds) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: folds are numbered from 1")
    return sorted(folds)


def _json_safe(meta: Any) -> Any:
    try:
        json.dumps(meta)
        return meta
    except (TypeError, ValueError):
        return str(meta)


def run(args: argparse.Namespace) -> int:
    """Evaluate the checkpoint on each protocol; print the table, write JSON and ROC if asked."""
    from synface.checkpoint import load_model
    from synface.eval.plots import plot_roc
    from synface.eval.protocols import load_protocol, select_folds
    from synface.eval.report import evaluate_model, format_table, resolve_flips, write_results
    from synface.train.checkpoints import latest_checkpoint

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size: {args.batch_size} must be at least 1")
    rules = list(dict.fromkeys(RULES if "all" in (args.rule or []) else (args.rule or ["synface"])))
    data = _per_protocol(args.data, len(args.protocol), "--data")
    pairs = _per_protocol(args.pairs, len(args.protocol), "--pairs")
    model, meta = load_model(latest_checkpoint(args.model) or args.model)  # a run folder: its latest
    results = []
    pair_sets = []
    for protocol, data_path, pairs_path in zip(args.protocol, data, pairs):
        options = {"num_pairs": args.synthetic_pairs} if protocol == "synthetic" else {}
        pair_set = load_protocol(protocol, data_path, pairs_path, **options)
        if args.folds is not None:
            pair_set = select_folds(pair_set, args.folds)
        pair_sets.append(pair_set.summary())
        logger.info("%s: %d pairs (%d same), %d folds, %d images", pair_set.name,
                    pair_set.num_pairs, int(pair_set.issame.sum()), pair_set.num_folds,
                    len(pair_set.images))
        results += evaluate_model(model, pair_set, rules, args.flip, args.batch_size, args.device,
                                  args.amp, args.crop)
    print(format_table(results))
    if args.out is not None:
        write_results(
            args.out, results, args.roc_points, model=str(args.model),
            model_meta=_json_safe(meta),
            settings={"rules": [{"rule": name, "flip": flip}
                                for name, flip in resolve_flips(rules, args.flip)],
                      "crop": args.crop, "amp": args.amp, "batch_size": args.batch_size,
                      "folds": args.folds},
            pair_sets=pair_sets,
        )
        print(f"results written to {args.out}")
    if args.roc is not None:
        plot_roc([(result.label, result.roc) for result in results], args.roc)
        print(f"ROC curves drawn to {args.roc}")
    return 0
