"""Spaces by name: ``register(name, factory)`` and ``get_space(name, **options)``.

A space module calls ``register`` when it is imported (a user's package registers its own the
same way). The built-in space modules (``BUILTINS``), the modules named by the
``jointnas.spaces`` entry-point group of installed packages and by the environment variable
``JOINTNAS_SPACES`` (comma-separated module names) are imported the first time a name is
looked up, not when ``jointnas.spaces`` is imported: the networks behind them import torch,
which the torch-free parts (constraints, the fine search, reuse) must not pay for. Studies and
predictor artifacts record the registered name, the options and the module that registered it, so a
worker on another machine, ``export``, ``search`` or ``predictor`` rebuild the space from the
stored record alone: ``space_from_record`` imports that module first when the name is not yet
registered in this process (importing a module by name runs only code installed on this
machine, never code read from the storage).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jointnas.spaces.base import FIXED_SUFFIX, Space
from jointnas.spaces.recipe_axes import before_augment_axis


@dataclass(frozen=True)
class Entry:
    """One registered space: how to make it, where it comes from, one line about it."""

    name: str
    factory: Callable[..., Space]
    module: str
    summary: str


_REGISTRY: dict[str, Entry] = {}
_PLUGINS_LOADED = False
ENV_VAR = "JOINTNAS_SPACES"
#: the spaces jointnas ships, each module registering its own on import
BUILTINS = (
    "jointnas.spaces.fbnetv3",
    "jointnas.spaces.anynet",
    "jointnas.spaces.regnet",
    "jointnas.spaces.efficientnet",
    "jointnas.spaces.shufflenet_choice",
)


def _load_plugins() -> None:
    """Import the built-in space modules, those of installed plugins and of
    ``JOINTNAS_SPACES``, once."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    from importlib.metadata import entry_points

    for module in BUILTINS:
        importlib.import_module(module)
    modules = [ep.value.split(":")[0] for ep in entry_points(group="jointnas.spaces")]
    modules += [m.strip() for m in os.environ.get(ENV_VAR, "").split(",") if m.strip()]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"cannot import space module {module!r}: {exc}") from None


def register(
    name: str, factory: Callable[..., Space], *, summary: str = "", replace: bool = False
) -> Callable[..., Space]:
    """Register ``factory(**options) -> Space`` under ``name``; returns the factory, so it can
    be used as a decorator-like call. Registering a taken name needs ``replace=True``."""
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"a space name is a non-empty word without spaces, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory for space {name!r} must be callable")
    old = _REGISTRY.get(name)
    module = getattr(factory, "__module__", None) or "__main__"
    if (
        old is not None
        and not replace
        and (old.module, old.factory.__qualname__)
        != (
            module,
            getattr(factory, "__qualname__", ""),
        )
    ):
        raise ValueError(f"space {name!r} is already registered by {old.module}")
    doc = summary or (inspect.getdoc(factory) or "").split("\n")[0]
    _REGISTRY[name] = Entry(name, factory, module, doc)
    return factory


def registered() -> dict[str, Entry]:
    """Every registered space, by name."""
    _load_plugins()
    return dict(sorted(_REGISTRY.items()))


def get_space(name: str, **options: Any) -> Space:
    """A fresh instance of the space registered as ``name``, made with ``options`` (JSON-able,
    since studies store them); ValueError naming the known spaces or the bad option."""
    if name not in _REGISTRY:
        _load_plugins()
    if name not in _REGISTRY:
        raise ValueError(f"unknown space {name!r}; registered spaces: {sorted(_REGISTRY)}")
    try:
        json.dumps(options)
    except TypeError as exc:
        raise ValueError(f"options of space {name!r} must be JSON-able: {exc}") from None
    try:
        space = _REGISTRY[name].factory(**options)
    except TypeError as exc:
        raise ValueError(f"space {name!r}: {exc}") from None
    if not isinstance(space, Space):
        raise TypeError(f"the factory of space {name!r} returned {type(space).__name__}")
    space.__dict__["_key"] = name
    space.__dict__["_options"] = {k: v for k, v in options.items() if v is not None}
    return space


def space_record(space: Space) -> dict[str, Any]:
    """What a study or an artifact stores to rebuild ``space`` (see ``space_from_record``)."""
    entry = _REGISTRY.get(space.key)
    return {
        "name": space.key,
        "options": space.options,
        "module": entry.module if entry is not None else type(space).__module__,
        "fingerprint": space.fingerprint(),
    }


def space_from_record(record: Mapping[str, Any]) -> Space:
    """Rebuild the space of a ``space_record``, importing its module if the name is not
    registered yet; ValueError when it cannot be found or its definition changed since."""
    name = record["name"]
    module = record.get("module")
    if name not in _REGISTRY and module and module != "__main__":
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(
                f"space {name!r} comes from module {module!r}, which cannot be imported "
                f"here ({exc}); install it or import it before loading"
            ) from None
    stored = record.get("fingerprint")
    space = as_recorded(lambda: get_space(name, **dict(record.get("options") or {})), stored)
    if stored is not None and stored != space.fingerprint():
        raise ValueError(
            f"space {name!r} has changed since it was recorded (fingerprint {stored}, now "
            f"{space.fingerprint()})"
        )
    return space


def as_recorded(build: Callable[[], Space], fingerprint: str | None) -> Space:
    """``build()``, or when ``fingerprint`` names the definition the space had before the
    recipe's ``augment`` axis, that older definition (``recipe_axes.before_augment_axis``):
    what a study or predictor recorded then still loads as it was made."""
    space = build()
    if fingerprint is None or fingerprint == space.fingerprint():
        return space
    with before_augment_axis():
        older = build()
    return older if older.fingerprint() == fingerprint else space


def space_from_legacy(
    name: str, fix: Mapping[str, Any] | None = None, *, fingerprint: str | None = None
) -> Space:
    """The space of an artifact written before spaces were recorded with their options: a
    bare name, ``-fixed`` (``base.FIXED_SUFFIX``) appended when parameters were pinned."""
    base = name.removesuffix(FIXED_SUFFIX)
    if (base != name) != bool(fix):
        raise ValueError(f"space {name!r} needs its pinned parameters (and only it does)")
    options = {"fix": dict(fix)} if fix else {}
    return as_recorded(lambda: get_space(base, **options), fingerprint)
