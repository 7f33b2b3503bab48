"""Helpers for the tests of jointnas and of users' own spaces (like ``optuna.testing``).

``postgres_server`` starts a throwaway PostgreSQL server; the space contract suite
(``check_space``, or ``SpaceContract`` for pytest) checks what every search space must
satisfy, built-in or a user's own.
"""

from jointnas.testing.postgres import PostgresUnavailable, pg_bindir, postgres_server
from jointnas.testing.spaces import SpaceContract, check_space, fvcore_cost

__all__ = [
    "PostgresUnavailable",
    "SpaceContract",
    "check_space",
    "fvcore_cost",
    "pg_bindir",
    "postgres_server",
]
