"""`synface align SRC DST`: MTCNN detection and 5-point alignment of a folder tree of photos."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "align",
        help="detect faces with MTCNN and crop them onto a template (folder tree in, tree out)",
        description="Mirror SRC into DST with every image replaced by its aligned crop. "
        "Resumable; writes DST/align_report.json listing images without a detected face.",
    )
    parser.add_argument("source", help="folder of photos (LFW, CFP, ImageFolder layouts...)")
    parser.add_argument("destination", help="output folder (created; re-running resumes)")
    parser.add_argument("--template", choices=["arcface", "synface"], default="synface",
                        help="synface = 112x96 (the paper), arcface = 112x112")
    parser.add_argument("--on-missing", choices=["center", "skip", "error"], default="center",
                        help="no face found: resize the centred image onto the template (default), "
                        "leave the image out, or stop")
    parser.add_argument("--selection", choices=["largest_central", "largest", "probability"],
                        default="largest_central", help="which face to keep when there are several")
    parser.add_argument("--min-face-size", type=float, default=20.0)
    parser.add_argument("--weights", default=None, help="folder of MTCNN safetensors (default: installed)")
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synface.eval.align import align_tree
    from synface.eval.detect import DetectorConfig, FaceDetector

    config = DetectorConfig(min_face_size=args.min_face_size, selection=args.selection)
    detector = FaceDetector(config, args.device, weights=args.weights)
    summary = align_tree(args.source, args.destination, args.template, args.on_missing, detector)
    print(
        f"aligned {summary.aligned} images into {summary.destination} ({summary.template} template); "
        f"no face: {len(summary.fallback)} centred, {len(summary.skipped)} skipped "
        f"(listed in align_report.json)"
    )
    return 0
