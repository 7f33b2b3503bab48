"""``Validated``: the one way a jointnas config checks its fields and is built from the CLI.

Every command's config (``RunConfig``, ``EDFConfig``, ``ScaleConfig``, ``SupernetConfig``,
``SearchConfig``) is a frozen keyword-only dataclass. Each used to repeat the same loops
(">= 1", ">= 0", a non-empty study name) and was filled field by field from argparse in the
CLI. Here a config *declares* which fields must be positive or non-negative, and a command
builds it with ``Config.from_args(args)``: every field whose name (or ``ARGS`` alias) the
parsed arguments carry is taken from them, so a new option is one dataclass field plus one
``add_argument``. Errors are ``ConfigError`` naming the command-line flag, so the CLI prints
one line and exits nonzero.

This module sits at the root (below every wing): it imports nothing of jointnas but errors.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, ClassVar, TypeVar

from jointnas.errors import ConfigError

C = TypeVar("C", bound="Validated")


def flag(name: str) -> str:
    """The command-line spelling of a config field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


class Validated:
    """Mixin for frozen keyword-only dataclass configs: declared checks, then ``check()``.

    Subclasses list field names in ``POSITIVE`` (must be >= 1), ``NON_NEGATIVE`` (>= 0) and
    ``NAMES`` (non-empty strings); the lists of a subclass extend its bases'. Further checks
    go in ``check()``, which runs after the declared ones (call ``super().check()``).
    """

    POSITIVE: ClassVar[tuple[str, ...]] = ()
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ()
    NAMES: ClassVar[tuple[str, ...]] = ()
    #: field name -> attribute of the argparse namespace, where the flag is spelled otherwise
    ARGS: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        for name in _declared(type(self), "POSITIVE"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{flag(name)} must be >= 1, got {value}")
        for name in _declared(type(self), "NON_NEGATIVE"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{flag(name)} must be >= 0, got {value}")
        for name in _declared(type(self), "NAMES"):
            if not str(getattr(self, name)).strip():
                raise ConfigError(f"{flag(self.arg_name(name))} must be a non-empty name")
        self.check()

    def check(self) -> None:
        """Checks beyond the declared ones (a subclass overrides it and calls super)."""

    @classmethod
    def arg_name(cls, field: str) -> str:
        """The argparse attribute that holds ``field`` (its ``ARGS`` alias, or itself)."""
        for klass in cls.__mro__:
            alias = vars(klass).get("ARGS", {}).get(field)
            if alias is not None:
                return alias
        return field

    @classmethod
    def from_args(cls: type[C], args: argparse.Namespace, **overrides: Any) -> C:
        """The config of a parsed command line: each field the namespace carries (under its
        name or ``ARGS`` alias), then ``overrides`` (values the command computes, e.g. a
        pinned architecture read from a file). Fields the command has no option for keep
        their defaults."""
        given = vars(args)
        values = {
            f.name: given[cls.arg_name(f.name)]
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if f.init and cls.arg_name(f.name) in given
        }
        return cls(**{**values, **overrides})


def _declared(cls: type, attr: str) -> list[str]:
    """``attr``'s names over ``cls`` and its bases, each once, base classes first."""
    out: list[str] = []
    for klass in reversed(cls.__mro__):
        for name in vars(klass).get(attr, ()):
            if name not in out:
                out.append(name)
    return out
