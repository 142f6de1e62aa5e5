"""Name -> constructor registry for face recognition backbones.

Backbones register a factory function with :func:`register_model`; callers build
them by name with :func:`create_model`, so configs and checkpoints refer to a
model by its registry name plus JSON-safe keyword arguments::

    @register_model
    def lresnet50e_ir(**kwargs) -> IResNet:
        return IResNet(layers=(3, 4, 14, 3), input_size=(112, 96), **kwargs)

    model = create_model("lresnet50e_ir", num_features=512)
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from synface.errors import SynfaceError

ModelFactory = TypeVar("ModelFactory", bound=Callable[..., nn.Module])

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(factory: ModelFactory) -> ModelFactory:
    """Register ``factory`` under its function name (a decorator).

    Args:
        factory: a function taking keyword arguments and returning an ``nn.Module``.

    Returns:
        ``factory`` unchanged.

    Raises:
        ValueError: a model of the same name is already registered (a programming error).
    """
    name = factory.__name__
    if name in _MODELS and _MODELS[name] is not factory:
        raise ValueError(f"model {name!r} is registered twice")
    _MODELS[name] = factory
    return factory


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching a shell-style ``pattern``.

    Args:
        pattern: ``fnmatch`` pattern such as ``"iresnet*"``.

    Returns:
        The matching registry names, sorted.
    """
    return sorted(name for name in _MODELS if fnmatch.fnmatchcase(name, pattern))


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model."""
    return name in _MODELS


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``.

    Keyword arguments whose value is ``None`` are dropped, so a config field left
    unset falls back to the model's own default.

    Args:
        name: registry name, e.g. ``"lresnet50e_ir"`` or ``"iresnet50"``.
        **kwargs: constructor arguments (``num_features``, ``dropout``, ...).

    Returns:
        The new model, in training mode, on the CPU.

    Raises:
        SynfaceError: ``name`` is not registered, or the arguments do not fit it.
    """
    if name not in _MODELS:
        # Names extending what was typed come first ("lresnet50" -> "lresnet50e_ir").
        extensions = sorted(candidate for candidate in _MODELS if candidate.startswith(name))
        similar = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.4)
        close = list(dict.fromkeys(extensions + similar))[:3]
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise SynfaceError(f"unknown model {name!r}{hint} see synface.models.list_models()")
    arguments = {key: value for key, value in kwargs.items() if value is not None}
    try:
        return _MODELS[name](**arguments)
    except TypeError as error:
        raise SynfaceError(f"model {name!r}: bad arguments {sorted(arguments)}: {error}") from None
