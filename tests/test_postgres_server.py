"""The tests' real PostgreSQL: a database per test, and a server that survives a restart with its data, its port
and LISTEN/NOTIFY working."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from postgres_server import PostgresServer


def test_state_url_is_a_fresh_database(state_url: str) -> None:
    with psycopg.connect(state_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO notes VALUES (1, 'héllo'), (2, 'world')")
        conn.commit()
    with psycopg.connect(state_url) as conn:
        assert conn.execute("SELECT id, body FROM notes ORDER BY id").fetchall() == [(1, "héllo"), (2, "world")]


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path / "pg")
    try:
        yield server
    finally:
        server.stop_and_remove()
    assert not server.folder.exists()


def test_restart_keeps_port_and_data_and_notify_works(own_server: PostgresServer) -> None:
    own_server.start()
    url = own_server.url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('before restart')")

    own_server.restart()

    assert own_server.url() == url
    with psycopg.connect(url, autocommit=True) as listener, psycopg.connect(url, autocommit=True) as sender:
        assert listener.execute("SELECT v FROM kept").fetchall() == [("before restart",)]
        listener.execute("LISTEN changes")
        sender.execute("SELECT pg_notify('changes', 'row 1')")
        received = list(listener.notifies(timeout=5, stop_after=1))
    assert [(n.channel, n.payload) for n in received] == [("changes", "row 1")]
