"""`synface train / export-onnx`: train a run config (one process or under torchrun), export a checkpoint to ONNX."""

from __future__ import annotations

import argparse
import json
import logging
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train face recognition from a run config (resumable; DDP under torchrun)",
        description="Train the run CONFIG describes (a YAML file or a bundled name such as tiny_cpu); "
        "key=value overrides follow it, e.g. train.epochs=10 data.batch_size=256. The run folder "
        "(train.output_dir) receives config.yaml, train.log, metrics.jsonl, TensorBoard events and one "
        "checkpoint per epoch. For several GPUs: torchrun --nproc_per_node N -m synface.cli train CONFIG.",
    )
    train.add_argument("config", help="YAML file or bundled config name")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    train.add_argument("--out", help="run folder (sets train.output_dir)")
    train.add_argument("--resume", action="store_true", help="continue the run in the run folder (train.resume=true)")
    train.add_argument("--device", help="auto, cpu, cuda, cuda:N (sets train.device)")
    train.add_argument("--onnx", metavar="FILE", help="also export the final model to this ONNX file")
    train.set_defaults(func=run_train)

    export = subparsers.add_parser(
        "export-onnx",
        help="export a trained backbone to ONNX (dynamic batch axis)",
        description="CHECKPOINT is a run folder (its latest checkpoint), a checkpoint folder or its model.json.",
    )
    export.add_argument("checkpoint", help="run folder, checkpoint folder or model.json")
    export.add_argument("out", help="ONNX file to write")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    export.set_defaults(func=run_export_onnx)


def _file_log(run_dir: str) -> logging.Handler | None:
    """A log file in the run folder (main process only), so a run keeps its own log."""
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    os.makedirs(run_dir, exist_ok=True)
    handler = logging.FileHandler(os.path.join(run_dir, "train.log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.getLogger("synface").addHandler(handler)
    return handler


def run_train(args: argparse.Namespace) -> int:
    from synface.errors import SynfaceError
    from synface.train import fit, load_run_config
    from synface.train.checkpoints import check_resumable, latest_checkpoint

    overrides = list(args.overrides)
    overrides += [f"train.output_dir={args.out}"] if args.out else []
    overrides += ["train.resume=true"] if args.resume else []
    overrides += [f"train.device={args.device}"] if args.device else []
    cfg = load_run_config(args.config, overrides)
    run_dir = cfg.train.output_dir
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is not None:  # refuse before the log file touches the run folder
        if not cfg.train.resume:
            raise SynfaceError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
        check_resumable(checkpoint, cfg, {})
    handler = _file_log(run_dir)
    try:
        result = fit(cfg)
    finally:
        if handler is not None:
            logging.getLogger("synface").removeHandler(handler)
            handler.close()
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    print(json.dumps({key: result[key] for key in ("run_dir", "checkpoint", "steps", "metrics")}, indent=2))
    if args.onnx:
        _export(result["checkpoint"], args.onnx, 17)
    return 0


def _export(checkpoint: str, out: str, opset: int) -> None:
    from synface.checkpoint import load_model
    from synface.models.export import export_onnx
    from synface.train.checkpoints import resolve_checkpoint

    folder = resolve_checkpoint(checkpoint)
    model, meta = load_model(folder)
    path = export_onnx(model, out, opset=opset)
    print(f"wrote {path} ({meta['name']} from {folder})")


def run_export_onnx(args: argparse.Namespace) -> int:
    _export(args.checkpoint, args.out, args.opset)
    return 0
