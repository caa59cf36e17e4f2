"""The receiver on PostgreSQL: store and dedupe, and a database that is unreachable or goes away."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import select

from journal_relay import db, service, spool
from journal_relay.models import Entry, Flag, Outbound
from journal_relay.receive import Handler, ReceiverController
from tests.conftest import free_port, make_message, register, send
from tests.test_storage_failures import FLAGGED, row_counts, settings_for

# Read once at import: the autouse fixture clears JOURNAL_RELAY_* variables before each test.
POSTGRES = os.environ.get("JOURNAL_RELAY_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

pytestmark = pytest.mark.postgres


def _reachable(url: str) -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@pytest.fixture
def schema_url() -> Iterator[str]:
    """A fresh schema per test, chosen through the URL so `serve` and the test see the same tables."""
    if not _reachable(POSTGRES):
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES.rpartition('@')[2]}")
    import psycopg

    name = f"jr_{uuid.uuid4().hex[:12]}"
    plain = POSTGRES.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    separator = "&" if "?" in POSTGRES else "?"
    yield f"{POSTGRES}{separator}options=-csearch_path%3D{name}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def entry_ids(engine: Engine) -> list[str]:
    with db.reading(engine) as session:
        return list(session.exec(select(Entry.message_id)).all())


def test_store_and_dedupe_on_postgres(schema_url, tmp_path):
    settings = settings_for(schema_url, tmp_path)
    run = service.start(settings)
    try:
        practice = register(run.engine, settings)
        raw = make_message(to=practice.address, body=FLAGGED, message_id="<pg-same@mail.test>")
        assert send(settings, raw, to=practice.address)[0] == 250
        assert send(settings, raw, to=practice.address)[0] == 250
        assert entry_ids(run.engine) == ["pg-same@mail.test"]
        with db.reading(run.engine) as session:
            assert session.exec(select(func.count()).select_from(Flag)).one() >= 1
            assert "alert" in session.exec(select(Outbound.kind)).all()
    finally:
        run.stop()


def test_unreachable_postgres_answers_451_at_rcpt_and_never_crashes(tmp_path):
    closed = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    settings = settings_for(closed, tmp_path)
    engine = db.make_engine(closed)
    writer = spool.SpoolWriter(engine)
    controller = ReceiverController(Handler(settings=settings, engine=engine, writer=writer), settings=settings)
    controller.start()
    try:
        address = f"abcdefghijklmnop@{settings.domain}"
        for _ in range(2):  # and the receiver is still there for the next one
            code, text = send(settings, make_message(to=address), to=address)
            assert (code, text[:5]) == (451, "4.3.0")
    finally:
        controller.stop()
        writer.close()
        engine.dispose()


class Proxy:
    """A TCP forwarder to PostgreSQL that the test can cut, like a database host that goes away."""

    def __init__(self, *, upstream: tuple[str, int]) -> None:
        self.port = free_port()
        self._upstream = upstream
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        assert self._listener is not None
        # shutdown() wakes the thread blocked in accept(); close() alone would leave the port listening.
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                inbound, _ = listener.accept()
            except OSError:
                return  # listener closed
            try:
                outbound = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                inbound.close()
                continue
            outbound.settimeout(None)
            with self._lock:
                self._sockets += [inbound, outbound]
            for a, b in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_postgres_going_away_answers_451_and_recovers(schema_url, tmp_path: Path):
    host_port = schema_url.split("@", 1)[1].split("/", 1)[0]
    proxy = Proxy(upstream=(host_port.rpartition(":")[0], int(host_port.rpartition(":")[2])))
    proxy.start()
    settings = settings_for(schema_url.replace(host_port, f"127.0.0.1:{proxy.port}"), tmp_path)
    run = service.start(settings)
    try:
        practice = register(run.engine, settings)
        assert send(settings, make_message(to=practice.address), to=practice.address)[0] == 250
        before = row_counts(run.engine)

        proxy.stop()
        code, text = send(settings, make_message(to=practice.address, body=FLAGGED,
                                                 message_id="<pg-away@mail.test>"), to=practice.address)
        assert (code, text[:5]) == (451, "4.3.0")

        proxy.start()
        assert row_counts(run.engine) == before
        assert send(settings, make_message(to=practice.address, body=FLAGGED,
                                           message_id="<pg-away@mail.test>"), to=practice.address)[0] == 250
        assert entry_ids(run.engine).count("pg-away@mail.test") == 1
    finally:
        run.stop()
        proxy.stop()
