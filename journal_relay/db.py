"""Storage plumbing: the engine (durable SQLite settings), the schema, and transactions."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.pool import NullPool
from sqlmodel import Session, SQLModel, create_engine

from journal_relay import models  # noqa: F401  (registers the tables on SQLModel.metadata)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Execution option marking a session that only reads (see reading()); SQLite then begins DEFERRED.
READ_ONLY = "journal_relay_read_only"
# SQLite's primary result code for a write on a connection that was opened read-only.
_SQLITE_READONLY = 8
# Session.info key of a batch's memo of look-ups (see batch_memo()).
_BATCH_MEMO = "journal_relay_batch_memo"


class StorageError(Exception):
    """The database could not do what was asked; the caller answers 'try again later'."""


def make_engine(url: str, *, busy_timeout_seconds: float = 10.0, pooled: bool = True,
                checkpoints: bool = True) -> Engine:
    """An engine for `url`. SQLite gets WAL with full sync, so a commit that returned is on disk.

    SQLite only: `pooled=False` gives a connection per transaction, so an idle process holds no file
    open, for work done in batches, where opening costs little beside the batch. `checkpoints=False`
    leaves copying the WAL into the database to another process's connections, off this one's commits.
    """
    if url.startswith("sqlite"):
        busy_ms = int(busy_timeout_seconds * 1000)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_seconds},
                               **({} if pooled else {"poolclass": NullPool}))

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Manage transactions ourselves: pysqlite's implicit BEGIN breaks SAVEPOINT.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            if not checkpoints:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

        @event.listens_for(engine, "handle_error")
        def _sqlite_read_only(context: ExceptionContext) -> None:
            # SQLite opens a file it cannot write read-only (a read-only remount, a full-disk guard) and
            # the connection stays so after the filesystem recovers: drop it and its pool, or every write
            # after the recovery would fail on a pooled connection opened during the outage.
            code = getattr(context.original_exception, "sqlite_errorcode", None)
            if code is not None and code & 0xFF == _SQLITE_READONLY:
                context.is_disconnect = True
                if context.execution_context is not None:
                    # An open statement keeps the closed connection's file, and with it the process's
                    # read-only view of the WAL index, alive until garbage collection.
                    context.execution_context.cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writes: IMMEDIATE takes the write lock up front, so two writers wait for each other
            # instead of failing mid-transaction with 'database is locked'.
            # Reads: DEFERRED never takes the write lock; under WAL a reader sees the last commit and
            # neither waits for the writer (RCPT look-ups, deliverer polls) nor holds it up.
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN DEFERRED")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)


@contextmanager
def transaction(engine: Engine, *, batch: bool = False) -> Iterator[Session]:
    """A session whose work is committed on leaving the block, or rolled back on error.

    `batch`: one transaction for many messages, whose look-ups are remembered (see batch_memo()).
    """
    with Session(engine, expire_on_commit=False, info={_BATCH_MEMO: {}} if batch else {}) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A session for queries only: nothing is committed, and on SQLite it takes no write lock."""
    with Session(engine, expire_on_commit=False, execution_options={READ_ONLY: True}) as session:
        yield session


def batch_memo(session: Session) -> dict[Hashable, Any] | None:
    """The batch's memo of look-ups (clients, senders, therapists), or None outside a batch.

    A batch is one transaction, and on SQLite it holds the write lock from its first statement to its
    COMMIT, so nothing another process commits (the CLI deactivating a client, changing senders) can
    land in between: a look-up remembered for the rest of the batch is exactly what a fresh query
    would return. On PostgreSQL (read committed) a change committed during a batch is seen from the
    next batch on, a few milliseconds later. Intake jobs only add entries, flags and outbound rows;
    they never change what is remembered here.
    """
    memo: dict[Hashable, Any] | None = session.info.get(_BATCH_MEMO)
    return memo
