"""`synface generate / preview / export`: make a synthetic dataset, look at a config, export images."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    generate = subparsers.add_parser(
        "generate",
        help="render a synthetic face dataset from a config (resumable)",
        description="Render the dataset a generation config describes into DIR. Re-running the same "
        "command after an interruption finishes the same dataset. CONFIG is a YAML file or the name of a "
        "bundled config (tiny, syn_10k_50, syn_10k_50_im, syn_2k_ub1, ...); key=value overrides follow it.",
    )
    generate.add_argument("config", help="YAML file or bundled config name")
    generate.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. layout=1K_10 seed=3")
    generate.add_argument("--out", required=True, metavar="DIR", help="dataset folder (created; re-running resumes)")
    generate.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    generate.add_argument("--overwrite", action="store_true", help="replace a dataset of another config in --out")
    generate.add_argument("--sampling-workers", type=int, default=None,
                          help="processes drawing random factors (default: 0 on cpu, up to 8 on cuda)")
    generate.set_defaults(func=run_generate)

    preview = subparsers.add_parser(
        "preview",
        help="render a PNG grid of identities x variations (and identity-mixup strips)",
        description="Rows are identities, columns their first samples; --mixup-strip adds a row blending "
        "identity 0 into identity 1 (phi 0 -> 1, the paper's Fig. 4). Items: an optional CONFIG "
        "(file or bundled name), then key=value overrides.",
    )
    preview.add_argument("items", nargs="*", metavar="[CONFIG] [key=value]", help="config and overrides")
    preview.add_argument("--out", required=True, help="PNG to write")
    preview.add_argument("--identities", type=int, default=4, help="grid rows (default 4)")
    preview.add_argument("--variations", type=int, default=6, help="grid columns (default 6)")
    preview.add_argument("--mixup-strip", action="store_true", help="add one identity-mixup strip")
    preview.add_argument("--strips", type=int, default=None, help="number of mixup strips (implies --mixup-strip)")
    preview.add_argument("--steps", type=int, default=11, help="tiles per mixup strip (default 11)")
    preview.add_argument("--device", default="auto")
    preview.set_defaults(func=run_preview)

    export = subparsers.add_parser(
        "export",
        help="export a generated dataset as an ImageFolder tree of PNGs with labels.csv",
        description="Write OUT/<label>/<sample>.png for every image plus OUT/labels.csv "
        "(path,id_a,w_a,id_b,w_b: the identity-mixup soft labels).",
    )
    export.add_argument("dataset", help="a complete generated dataset folder")
    export.add_argument("out", help="export folder (must be new or empty)")
    export.set_defaults(func=run_export)


def _device(name: str) -> str:
    """The device named on the command line; ``auto`` is cuda when available."""
    import torch

    from synface.errors import ConfigError

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device: {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device: {name!r} but no CUDA device is available; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device: {name!r} is not supported; use cpu, cuda or cuda:N")
    return name


def _sampling_workers(requested: int | None, device: str) -> int:
    import os

    from synface.errors import ConfigError

    if requested is None:
        return 0 if device == "cpu" else max(0, min(8, (os.cpu_count() or 1) - 1))
    if requested < 0:
        raise ConfigError(f"--sampling-workers: {requested} must not be negative")
    return requested


def _describe_model(generator) -> str:
    model = generator.model
    return (f"face model: {model.name} ({model.num_vertices} vertices, {model.num_identity} identity modes, "
            f"{model.num_expression} expressions; hash {model.content_hash()})")


def run_generate(args: argparse.Namespace) -> int:
    from synface.generate.generator import FaceGenerator
    from synface.generate.sampling import load_generate_config
    from synface.generate.writer import generate_dataset

    config = load_generate_config(args.config, args.overrides)
    device = _device(args.device)
    workers = _sampling_workers(args.sampling_workers, device)
    with FaceGenerator(config, device, sampling_workers=workers) as generator:
        print(_describe_model(generator))
        summary = generate_dataset(config, args.out, device, overwrite=args.overwrite, generator=generator)
    image = summary["image"]
    print(f"{args.out}: {summary['num_samples']} images of {summary['num_identities']} identities, "
          f"{image['height']}x{image['width']} ({image['template']} template), mixup {summary['mixup']}, "
          f"{len(summary['shards'])} shards")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from synface.generate.generator import FaceGenerator
    from synface.generate.preview import write_preview
    from synface.generate.sampling import GenerateConfig, load_generate_config

    items = list(args.items)
    source = items.pop(0) if items and "=" not in items[0] else None
    config = load_generate_config(source, items) if source else GenerateConfig().with_overrides(items)
    generator = FaceGenerator(config, _device(args.device))
    print(_describe_model(generator))
    strips = args.strips if args.strips is not None else int(args.mixup_strip)
    path = write_preview(generator, args.out, args.identities, args.variations, strips, args.steps)
    print(f"wrote {path}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from synface.generate.export import export_image_folder

    count = export_image_folder(args.dataset, args.out)
    print(f"exported {count} images to {args.out} (labels in {args.out}/labels.csv)")
    return 0
