"""The intake spool: where a message lives from its 250 until the back process has stored its entries.

Beside a SQLite database the spool is a file of its own, so the receiver's commits never wait for the
write lock that the back process holds while it stores entries. The back process deletes a message only
after the entries it became are committed; if it dies in between, the message is processed again and the
entries' unique (client, Message-ID) keeps each one stored once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from journal_relay.db import StorageError
from journal_relay.models import Inbound

log = logging.getLogger(__name__)

_INSERT = insert(Inbound)
_DELETE = delete(Inbound).where(col(Inbound.id) == bindparam("inbound_id"))
_POSTPONE = (
    update(Inbound)
    .where(col(Inbound.id) == bindparam("inbound_id"))
    .values(attempts=bindparam("new_attempts"), next_attempt_at=bindparam("until"))
)


# A SQLite spool's write-ahead log is grown to this size before the receiver takes mail. Appending to a log
# that must grow costs each commit's fsync a file-size update as well (benchmarks/spool_commit.py: 0.47-0.53
# against 0.33-0.41 ms per commit of four messages); PostgreSQL preallocates its WAL segments for this reason.
WAL_PREALLOCATE_BYTES = 32 * 1024 * 1024


def create(engine: Engine, *, preallocate: bool = False) -> None:
    """The spool's table; with `preallocate` (the receiver, at start, before anything else uses the file)
    also a full-size write-ahead log, see WAL_PREALLOCATE_BYTES."""
    Inbound.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
    if preallocate and engine.dialect.name == "sqlite" and engine.url.database:
        wal = Path(engine.url.database + "-wal")
        if wal.exists() and wal.stat().st_size >= WAL_PREALLOCATE_BYTES:
            return
        # An optimisation only: on a small or nearly full disk the room is better left to mail.
        if shutil.disk_usage(wal.parent).free < 8 * WAL_PREALLOCATE_BYTES:
            log.info("the spool's write-ahead log is not preallocated: little free disk space")
            return
        try:
            _preallocate_wal(engine)
        except Exception as exc:  # noqa: BLE001 - a small disk still takes mail
            log.warning("the spool's write-ahead log was not preallocated: %s", type(exc).__name__)
            raw = engine.raw_connection()
            try:
                raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")  # give the space back
            finally:
                raw.close()


def _preallocate_wal(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS wal_preallocation (filler BLOB)")
        connection.exec_driver_sql("INSERT INTO wal_preallocation VALUES (zeroblob(?))", (WAL_PREALLOCATE_BYTES,))
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE wal_preallocation")
    raw = engine.raw_connection()  # outside any transaction: a checkpoint or VACUUM cannot run in one
    try:
        cursor = raw.cursor()
        # The first checkpoint copies the filler into the database; VACUUM gives that space back; the
        # second starts the log again from its beginning. The log file keeps its size, so the commits
        # that follow overwrite it in place.
        cursor.execute("PRAGMA wal_checkpoint(RESTART)")
        cursor.execute("VACUUM")
        cursor.execute("PRAGMA wal_checkpoint(RESTART)")
    finally:
        raw.close()


# Under a steady flood the back process's ordinary (passive) checkpoints never catch up with the receiver's
# commits, so SQLite never starts the log again from its beginning: the log on disk, and its index, which
# every connection maps into memory, would grow with every message (about 3 KB each). Past this many bytes
# of log the back process forces the restart; the receiver's commits wait for it (the frames are already
# copied by then, so the wait is short) instead of the disk filling.
WAL_RESTART_BYTES = 2 * WAL_PREALLOCATE_BYTES


def restart_log(engine: Engine, *, max_bytes: int = WAL_RESTART_BYTES) -> bool:
    """SQLite: checkpoint the spool's write-ahead log, and if it holds more than `max_bytes`, make the next
    commit start it again from its beginning. True when it did. Other databases: nothing to do."""
    if engine.dialect.name != "sqlite":
        return False
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
        _busy, frames, _copied = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames * page_size <= max_bytes:
            return False
        busy = cursor.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
    finally:
        raw.close()
    log.info("the spool's write-ahead log (%d MB) was %s", frames * page_size // 1_000_000,
             "restarted" if not busy else "not restarted yet: the database is busy")
    return not busy


@dataclass(frozen=True)
class Spooled:
    """One message waiting in the spool."""

    id: int
    received_at: datetime
    client_ids: tuple[int, ...]
    envelope_from: str
    peer: str
    helo: str
    raw: bytes
    attempts: int


@dataclass(frozen=True)
class Taken:
    """A message as the receiver hands it over: what a spool row is made of."""

    raw: bytes
    client_ids: tuple[int, ...]
    envelope_from: str
    peer: str
    helo: str
    received_at: datetime

    def row(self) -> dict[str, Any]:
        return {
            "received_at": self.received_at, "client_ids": ",".join(str(i) for i in self.client_ids),
            "envelope_from": self.envelope_from, "peer": self.peer, "helo": self.helo, "raw": self.raw,
            "attempts": 0, "next_attempt_at": self.received_at,
        }


def due(*, session: Session, now: datetime, limit: int, after: int = 0) -> list[Spooled]:
    """The oldest messages due for processing at `now` with an id above `after`, at most `limit`."""
    query = (
        select(Inbound)
        .where(col(Inbound.id) > after, col(Inbound.next_attempt_at) <= now)
        .order_by(col(Inbound.id))
        .limit(limit)
    )
    return [
        Spooled(id=row.id, received_at=row.received_at, client_ids=tuple(int(i) for i in row.client_ids.split(",")),
                envelope_from=row.envelope_from, peer=row.peer, helo=row.helo, raw=row.raw, attempts=row.attempts)
        for row in session.exec(query).all()
        if row.id is not None
    ]


def finish(*, session: Session, done: Sequence[int], postponed: Sequence[tuple[int, int, datetime]]) -> None:
    """Remove what is stored; `postponed` (id, attempts so far, next try) waits for another attempt."""
    connection = session.connection()
    if done:
        connection.execute(_DELETE, [{"inbound_id": i} for i in done])
    if postponed:
        connection.execute(_POSTPONE, [{"inbound_id": i, "new_attempts": n, "until": t} for i, n, t in postponed])


def size(*, session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Inbound)).one())


def oldest(*, session: Session) -> datetime | None:
    found: datetime | None = session.exec(select(func.min(Inbound.received_at))).one()
    return found


# How long the writer keeps its connection checked out after its last commit.
_LINGER_SECONDS = 0.05


class SpoolWriter:
    """One thread commits what the receiver takes, many messages per commit (one fsync).

    No message's future resolves before the COMMIT holding it has returned: that is what the 250 waits
    for. A batch fails or succeeds whole; every row is independent, so nothing but the storage itself can
    fail it. Per batch, not per message: one wake-up of this thread, one call into each waiting event loop,
    and one `on_committed` (the receiver wakes the back process with it).
    """

    def __init__(self, engine: Engine, *, max_batch: int = 64,
                 on_committed: Callable[[], None] = lambda: None) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._on_committed = on_committed
        # deque.append and popleft are atomic, so submitters never wait for the committing thread; the
        # event is set only when that thread may be asleep.
        self._jobs: collections.deque[tuple[Taken, _Waiter]] = collections.deque()
        self._work = threading.Event()
        self._stopping = False
        self._connection: Connection | None = None
        self._thread = threading.Thread(target=self._run, name="journal-relay-spool", daemon=True)
        self._thread.start()

    def submit(self, taken: Taken) -> Future[None]:
        """Spool `taken`; the future resolves once it is committed (for threads: the CLI, tests)."""
        future: Future[None] = Future()
        self._put(taken, future)
        return future

    async def spool(self, taken: Taken) -> None:
        """Spool `taken`, returning once it is committed (for the receiver's event loop)."""
        waiter = asyncio.get_running_loop().create_future()
        self._put(taken, waiter)
        await waiter

    def close(self) -> None:
        self._stopping = True
        self._work.set()
        self._thread.join(timeout=30)

    def _put(self, taken: Taken, waiter: _Waiter) -> None:
        self._jobs.append((taken, waiter))
        if not self._work.is_set():
            self._work.set()

    def _run(self) -> None:
        while True:
            if not self._work.wait(timeout=_LINGER_SECONDS):
                # Idle: the connection goes back to the pool, so that disposing of the engine closes the
                # file (a read-only remount, a backup tool).
                self._drop_connection()
                self._work.wait()
            self._work.clear()
            while self._jobs:
                batch: list[tuple[Taken, _Waiter]] = []
                while self._jobs and len(batch) < self._max_batch:
                    batch.append(self._jobs.popleft())
                self._commit(batch)
            if self._stopping and not self._jobs:
                self._drop_connection()
                return

    def _drop_connection(self, *, broken: bool = False) -> None:
        if self._connection is not None:
            try:
                if broken:
                    self._connection.invalidate()  # closed, not pooled: the next batch opens a fresh one
                self._connection.close()
            except Exception:  # noqa: BLE001 - a broken connection need not close cleanly
                pass
            self._connection = None

    def _commit(self, batch: list[tuple[Taken, _Waiter]]) -> None:
        try:
            # One connection while mail keeps coming: checking one out of the pool per batch cost as much
            # as the insert. After a failure it is replaced, in case the failure was the connection's.
            if self._connection is None:
                self._connection = self._engine.connect()
            with self._connection.begin():
                self._connection.execute(_INSERT, [taken.row() for taken, _ in batch])
        except Exception as exc:  # noqa: BLE001 - the commit failed: nobody in the batch is spooled
            log.error("batch of %d messages not spooled: %s", len(batch), type(exc).__name__)
            self._drop_connection(broken=True)
            _resolve([waiter for _, waiter in batch], StorageError(type(exc).__name__))
            return
        _resolve([waiter for _, waiter in batch], None)
        self._on_committed()


_Waiter = Future[None] | asyncio.Future[None]


def _resolve(waiters: list[_Waiter], error: Exception | None) -> None:
    """Settle every waiter: concurrent futures here, event-loop futures with one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for waiter in waiters:
        if isinstance(waiter, asyncio.Future):
            by_loop.setdefault(waiter.get_loop(), []).append(waiter)
        elif waiter.set_running_or_notify_cancel():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, futures, error)
        except RuntimeError:
            pass  # that loop is closed: its sessions are gone, nobody waits for an answer


def _settle(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for future in futures:
        if future.done():
            continue  # the session was cancelled (the client hung up): no answer to give
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
