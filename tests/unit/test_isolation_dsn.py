"""Throwaway databases keep the DSN's credentials and TLS parameters."""

from __future__ import annotations

import pytest

from chatmesh.isolation import with_database


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        (
            "postgresql://chatmesh@127.0.0.1:15432/chatmesh",
            "postgresql://chatmesh@127.0.0.1:15432/chatmesh_t1",
        ),
        (
            "postgresql://chatmesh:p%40ss@db:5432/chatmesh"
            "?sslmode=verify-full&sslrootcert=/etc/chatmesh/pg/ca.crt",
            "postgresql://chatmesh:p%40ss@db:5432/chatmesh_t1"
            "?sslmode=verify-full&sslrootcert=/etc/chatmesh/pg/ca.crt",
        ),
    ],
)
def test_only_the_database_changes(dsn: str, expected: str) -> None:
    assert with_database(dsn, "chatmesh_t1") == expected
