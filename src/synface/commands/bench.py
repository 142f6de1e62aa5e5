"""`synface bench train / generate`: throughput of training steps and of face generation, printed as JSON."""

from __future__ import annotations

import argparse
import json


def _flag(parser: argparse.ArgumentParser, name: str, default: bool, help: str) -> None:
    parser.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=default, help=help)


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser("bench", help="measure training or generation throughput")
    actions = bench.add_subparsers(dest="bench_command", metavar="WHAT", required=True)

    train = actions.add_parser(
        "train",
        help="images/s of full train steps (data, forward, margin head, backward, SGD)",
        description="Times train steps after a warm-up. --source random makes images on the device (the "
        "network alone); disk reads a generated dataset (--data) end to end; online renders faces per batch.",
    )
    train.add_argument("--model", default="iresnet50", help="backbone registry name (default iresnet50)")
    train.add_argument("--batch-size", type=int, default=512)
    train.add_argument("--num-classes", type=int, default=10_000, help="classifier size (random/online)")
    train.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="bf16")
    _flag(train, "channels-last", True, "channels-last model and batches (default on)")
    _flag(train, "compile", False, "torch.compile the backbone")
    train.add_argument("--source", choices=("random", "disk", "online"), default="random")
    train.add_argument("--data", default="", help="dataset folder (disk) or generation config (online)")
    train.add_argument("--augmentation", default="paper", help="none, paper or digiface")
    train.add_argument("--steps", type=int, default=20, help="timed steps")
    train.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    train.add_argument("--workers", type=int, default=8, help="loader processes (disk)")
    train.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), help="crop size (default: the model's)")
    train.add_argument("--device", default="auto")
    train.set_defaults(func=run_bench_train)

    generate = actions.add_parser(
        "generate",
        help="aligned face crops per second of the generator",
        description="Renders batches of distinct samples on the device after a warm-up.",
    )
    generate.add_argument("--config", help="generation config (YAML or bundled name; default 10K_50 with mixup)")
    generate.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                          help="config override, repeatable (e.g. face_model=builtin, render.supersample=1)")
    generate.add_argument("--batch-size", type=int, default=64)
    generate.add_argument("--iterations", type=int, default=5, help="timed batches")
    generate.add_argument("--warmup", type=int, default=1, help="untimed batches first")
    generate.add_argument("--device", default="auto")
    generate.add_argument("--render-threads", type=int, default=0,
                          help="CPU threads drawing each batch, one core each (default 0: one per core)")
    generate.add_argument("--sampling-workers", type=int, default=0, help="processes drawing the factors")
    generate.set_defaults(func=run_bench_generate)


def run_bench_train(args: argparse.Namespace) -> int:
    from synface.train.bench import run_train_benchmark

    result = run_train_benchmark(
        model=args.model, batch_size=args.batch_size, num_classes=args.num_classes, precision=args.precision,
        channels_last=args.channels_last, compile=args.compile, source=args.source, device=args.device,
        steps=args.steps, warmup=args.warmup, data_path=args.data, augmentation=args.augmentation,
        workers=args.workers, image_size=tuple(args.image_size) if args.image_size else None,
    )
    print(json.dumps(result, indent=2))
    return 0


def run_bench_generate(args: argparse.Namespace) -> int:
    from synface.generate.bench import default_benchmark_config, run_generate_benchmark
    from synface.train.distributed import resolve_device

    if args.config:
        from synface.generate.sampling import load_generate_config

        config = load_generate_config(args.config, args.override)
    else:
        config = default_benchmark_config(args.override)
    threads = args.render_threads if args.render_threads > 0 else None
    result = run_generate_benchmark(batch_size=args.batch_size, iterations=args.iterations,
                                    device=resolve_device(args.device), config=config, warmup=args.warmup,
                                    render_threads=threads, sampling_workers=args.sampling_workers)
    print(json.dumps(result, indent=2))
    return 0
