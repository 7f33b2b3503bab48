"""Helpers for the tests of jointnas and of users' own spaces (like ``optuna.testing``).

``postgres_server`` starts a throwaway PostgreSQL server; the space contract suite checks what
every registered search space must satisfy.
"""

from jointnas.testing.postgres import PostgresUnavailable, pg_bindir, postgres_server

__all__ = ["PostgresUnavailable", "pg_bindir", "postgres_server"]
