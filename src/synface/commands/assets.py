"""`synface assets ...`: import, install and list the assets synface keeps in $SYNFACE_HOME.

Each action is one ``_add_<action>(actions)`` function that adds its parser and
sets ``func``; :data:`ACTIONS` lists them, so a new action is one more function.
"""

from __future__ import annotations

import argparse


def _add_import_ict(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "import-ict",
        help="import the ICT-FaceKit face model (FaceXModel.tar.xz or its FaceXModel/ folder)",
        description="Convert ICT-FaceKit's FaceXModel (MIT licence, github.com/ICT-VGL/ICT-FaceKit) into "
        "synface's face model format under $SYNFACE_HOME/facemodels/NAME; it then becomes the default model.",
    )
    parser.add_argument("path", help="FaceXModel.tar.xz, a FaceXModel/ folder, or a folder holding either")
    parser.add_argument("--name", default="ict-facekit", help="model name and folder (default: ict-facekit)")
    parser.set_defaults(func=_import_ict)


def _import_ict(args: argparse.Namespace) -> int:
    from synface.generate.ict import import_ict_facekit

    imported = import_ict_facekit(args.path, name=args.name)
    model = imported.model
    print(
        f"imported face model '{model.name}' into {imported.folder}: {model.num_vertices} vertices, "
        f"{model.num_identity} identity modes, {model.num_expression} expressions "
        f"({imported.seconds:.1f} s, from {model.source})"
    )
    return 0


def _add_list(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser("list", help="list the face models synface can use")
    parser.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    from synface.generate.registry import (
        BUILTIN,
        ICT_NAME,
        describe_face_model,
        face_model_dir,
        list_face_models,
    )

    names = list_face_models()
    default = ICT_NAME if ICT_NAME in names else BUILTIN
    for name in names:
        marker = " (default)" if name == default else ""
        if name == BUILTIN:
            print(f"{name}{marker}: built-in head made by code")
            continue
        info = describe_face_model(face_model_dir(name))
        print(
            f"{name}{marker}: {info['vertices']} vertices, {info['identity']} identity modes, "
            f"{info['expression']} expressions; {info['folder']} (from {info['source']})"
        )
    return 0


def _add_install(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "install",
        help="install network weights (mtcnn: the face detector used by `synface align`)",
        description="mtcnn: fetch the facenet-pytorch wheel with pip (no import of that package), or read "
        "a local wheel or folder given with --source, check the P/R/O-Net weights and store them as "
        "safetensors under $SYNFACE_HOME/weights/mtcnn.",
    )
    parser.add_argument("asset", choices=["mtcnn"], help="what to install")
    parser.add_argument("--source", default=None, help="a facenet-pytorch .whl file or a folder with pnet.pt etc.")
    parser.set_defaults(func=_install)


def _install(args: argparse.Namespace) -> int:
    from synface.eval.mtcnn_weights import install_mtcnn_weights

    folder = install_mtcnn_weights(args.source)
    print(f"installed MTCNN weights (P-Net, R-Net, O-Net) into {folder}")
    return 0


ACTIONS = (_add_import_ict, _add_list, _add_install)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("assets", help="import and list face models and other assets")
    actions = parser.add_subparsers(dest="assets_action", metavar="ACTION", title="actions")
    for add in ACTIONS:
        add(actions)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
