"""The back of the service, in a process of its own: it turns spooled messages into entries, sends the
outbox and runs the digest schedule, while the receiver's process only takes mail.

Why a process: parsing, screening and storing cost several times the SMTP conversation itself; in the
receiver's process they would hold its GIL while senders wait. Between the two is the spool (see
spool.py): a message the receiver answered 250 for survives a crash of either process, and is stored once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection, wait

from sqlalchemy.engine import Engine

from journal_relay import db, digest, intake, spool
from journal_relay.config import Settings
from journal_relay.deliver import Deliverer, transport_for
from journal_relay.schedule import start_ticking

log = logging.getLogger(__name__)

# After this many failed attempts to store a spooled message (a bug of ours, not an outage: an outage
# fails the whole batch's commit, which counts no attempt), it is stored as "could not be processed", in
# quarantine for staff, rather than retried for ever.
GIVE_UP_AFTER_ATTEMPTS = 3
RETRY_CAP = timedelta(hours=1)
# Stored messages leave the spool in bulk (see Runner).
REMOVE_AFTER_SECONDS = 1.0
REMOVE_AFTER_COUNT = 2048
# How long the runner sleeps when nobody wakes it: a safety net only; the receiver wakes it on every commit.
IDLE_SECONDS = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class Runner:
    """Processes what the spool holds, a batch per transaction (one commit, one fsync, per batch).

    Stored messages leave the spool in bulk, about once a second or when the spool is idle, not once per
    batch: every write to the spool takes the lock the receiver needs for each 250. Until then a cursor
    keeps them from being read again; a crash in between costs a second processing, which stores nothing
    twice (see spool.py).
    """

    def __init__(self, *, engine: Engine, spool_engine: Engine, pipeline: intake.Intake,
                 on_queued: Callable[[], None], batch: int = 64,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._spool = spool_engine
        self._intake = pipeline
        self._on_queued = on_queued
        self._batch = batch
        self._monotonic = monotonic
        self._after = 0  # spool ids up to here are stored or postponed, in this run of the process
        self._stored: list[int] = []  # stored, not yet removed from the spool
        self._removed_at = monotonic()

    def run_once(self, *, now: datetime) -> int:
        """Process up to one batch of spooled messages due at `now`; returns how many were stored.
        Raises db.StorageError when the batch could not be committed (it stays spooled)."""
        with db.reading(self._spool) as session:
            items = spool.due(session=session, now=now, limit=self._batch, after=self._after)
        if not items:
            self.remove_stored()
            return 0
        # The pure stages run before the transaction begins: the write lock is held only for the inserts.
        steps = [
            (item, intake.process(item, intake=self._intake, give_up=item.attempts >= GIVE_UP_AFTER_ATTEMPTS))
            for item in items
        ]
        done: list[int] = []
        postponed: list[tuple[int, int, datetime]] = []
        queued = 0
        try:
            with db.transaction(self._engine, batch=True) as session:
                for item, step in steps:
                    try:
                        with session.begin_nested():
                            outcome = step(session, now)
                    except Exception as exc:  # noqa: BLE001 - this message alone waits; the batch goes on
                        attempts = item.attempts + 1
                        log.error("spooled message %s not stored (%s), attempt %d; will retry",
                                  item.id, type(exc).__name__, attempts)
                        postponed.append((item.id, attempts, now + min(timedelta(seconds=2**attempts), RETRY_CAP)))
                        continue
                    done.append(item.id)
                    queued += len(outcome.queued)
            if postponed:  # rare: a bug of ours or a poisoned message, worth the spool's lock at once
                with db.transaction(self._spool) as session:
                    spool.finish(session=session, done=(), postponed=postponed)
        except Exception as exc:  # noqa: BLE001 - a commit failed (disk full, database gone): all stay spooled
            raise db.StorageError(type(exc).__name__) from None
        self._after = max(item.id for item in items)
        self._stored += done
        if len(self._stored) >= REMOVE_AFTER_COUNT or self._monotonic() - self._removed_at >= REMOVE_AFTER_SECONDS:
            self.remove_stored()
        if queued:
            self._on_queued()
        return len(done)

    def remove_stored(self) -> None:
        """Take what is stored out of the spool; then read the spool from its start again (postponed
        messages come round)."""
        if self._stored:
            with db.transaction(self._spool) as session:
                spool.finish(session=session, done=self._stored, postponed=())
            self._stored = []
            spool.restart_log(self._spool)
        self._after = 0
        self._removed_at = self._monotonic()


@dataclass(frozen=True)
class _Back:
    engine: Engine
    spool_engine: Engine
    pipeline: intake.Intake
    runner: Runner
    deliverer: Deliverer


def _build(settings: Settings) -> _Back:
    # Unpooled: between batches this process holds no database file open (a read-only remount, a backup
    # tool, an operator's checks all see only the receiver's connections).
    engine = db.make_engine(settings.database_url, busy_timeout_seconds=settings.database_busy_timeout_seconds,
                            pooled=False)
    spool_engine = db.make_engine(settings.spool_database_url,
                                  busy_timeout_seconds=settings.database_busy_timeout_seconds, pooled=False)
    pipeline = intake.build(settings)
    deliverer = Deliverer(
        engine=engine, transport=transport_for(settings), retry_cap_seconds=settings.delivery_retry_max_seconds
    )
    runner = Runner(engine=engine, spool_engine=spool_engine, pipeline=pipeline, on_queued=deliverer.wake,
                    batch=settings.writer_max_batch)
    return _Back(engine, spool_engine, pipeline, runner, deliverer)


def _drain_wakeups(wakeups: Connection) -> bool:
    """Read every pending wake-up; False once the receiver's end is closed (stop, or its process died)."""
    while True:
        try:
            data = os.read(wakeups.fileno(), 4096)
        except BlockingIOError:
            return True
        if not data:
            return False


def _receiver_alive() -> bool:
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


def _finish_spool(runner: Runner, *, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if not runner.run_once(now=utc_now()):
                break
        except db.StorageError:
            break
    try:
        runner.remove_stored()
    except Exception as exc:  # noqa: BLE001 - stored twice is prevented anyway (see spool.py)
        log.warning("stored messages left in the spool for the next start: %s", type(exc).__name__)


def main(settings: Settings, wakeups: Connection) -> None:
    """The back process: runs until the receiver closes its end of `wakeups` (or dies), then finishes the
    spool and stops, in order."""
    # The receiver stops this process itself, in order, by closing the wake-up pipe: Ctrl-C reaches the
    # whole process group, and systemd may send SIGTERM to every process of the service at once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from journal_relay.service import configure_logging  # the same log format as the receiver's process

    configure_logging(settings)
    os.nice(settings.back_process_nice)
    os.set_blocking(wakeups.fileno(), False)
    back = _build(settings)
    back.deliverer.start()

    def tick(now: datetime) -> None:
        if digest.send_due(engine=back.engine, settings=settings, renderer=back.pipeline.renderer, now=now):
            back.deliverer.wake()

    # Mail spooled before a stop or a crash becomes entries before the first tick, so a digest that is
    # already due at start holds it.
    _finish_spool(back.runner)
    scheduler = start_ticking(tick, every_seconds=settings.tick_seconds)
    failures = 0
    try:
        running = True
        while running:
            try:
                taken = back.runner.run_once(now=utc_now())
                failures = 0
            except db.StorageError as exc:
                failures += 1
                log.error("spool batch not committed (%s); retrying", exc)
                taken = 0
                time.sleep(min(0.1 * 2**failures, 5.0))
            if taken:
                running = _drain_wakeups(wakeups)
                continue
            if wait([wakeups], timeout=IDLE_SECONDS):
                running = _drain_wakeups(wakeups)
        orphaned = not _receiver_alive()
        if orphaned:
            # The receiver was killed: a new one may already be starting with its own back process and
            # deliverer. Stop sending at once (two deliverers could send one email twice); the spool and
            # the outbox wait for the next start.
            log.warning("the receiver's process is gone; stopping without finishing the spool")
            back.deliverer.stop()
        else:
            # Stopping: what was spooled before the receiver stopped is processed now, not at the next start.
            _finish_spool(back.runner)
    finally:
        scheduler.shutdown(wait=True)
        back.deliverer.stop()
        back.engine.dispose()
        back.spool_engine.dispose()


class BackProcess:
    """The receiver's handle on the back process: wakes it, restarts it if it dies, stops it in order."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["journal_relay.preload"])
        self._reader, self._writer = self._context.Pipe(duplex=False)
        os.set_blocking(self._writer.fileno(), False)
        self._stopping = threading.Event()
        self._process = self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="journal-relay-back", daemon=True)
        self._supervisor.start()

    def _spawn(self) -> multiprocessing.process.BaseProcess:
        process = self._context.Process(  # type: ignore[attr-defined]
            target=main, args=(self._settings, self._reader), name="journal-relay-back", daemon=False
        )
        process.start()
        return process  # type: ignore[no-any-return]

    def wake(self) -> None:
        """Tell the back process there is new mail in the spool (called after every commit: cheap)."""
        try:
            os.write(self._writer.fileno(), b".")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups the process has not read yet: it is awake anyway
        except OSError:
            pass  # stopping

    def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            self._process.join(timeout=0.5)
            if self._process.is_alive() or self._stopping.is_set():
                continue
            log.error("the back process exited (code %s); restarting it in %.0f s", self._process.exitcode, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, 60.0)
            self._process = self._spawn()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def stop(self, *, timeout: float = 30.0) -> None:
        """Close the wake-up pipe (the process then finishes the spool and exits), and wait for it."""
        self._stopping.set()
        self._supervisor.join(timeout=5)
        self._writer.close()
        self._process.join(timeout=timeout)
        if self._process.is_alive():
            log.error("the back process did not stop in %.0f s; terminating it", timeout)
            self._process.terminate()
            self._process.join(timeout=5)
        self._reader.close()
