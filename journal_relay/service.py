"""The service: the receiver in this process and the back process beside it, started and stopped in order."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from journal_relay import db, intake, spool
from journal_relay.config import Settings
from journal_relay.receive import Handler, ReceiverController
from journal_relay.runner import BackProcess

log = logging.getLogger(__name__)


@dataclass
class Running:
    engine: Engine
    spool_engine: Engine
    writer: spool.SpoolWriter
    controller: ReceiverController
    back: BackProcess

    def stop(self) -> None:
        # Stop taking mail first, then commit what was taken, then let the back process finish the spool
        # and its current delivery.
        self.controller.stop()
        self.writer.close()
        self.back.stop()
        self.engine.dispose()
        self.spool_engine.dispose()


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs each command line at INFO, private addresses included: those are secrets.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # APScheduler tells of every job it adds and runs at INFO: noise at 3 a.m.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def start(settings: Settings) -> Running:
    """The receiver in this process, the rest (spool runner, deliverer, scheduler) in the back process."""
    engine = db.make_engine(settings.database_url, busy_timeout_seconds=settings.database_busy_timeout_seconds)
    db.create_schema(engine)
    # The back process checkpoints the spool's WAL (its commits are few), so a 250 never waits for one.
    spool_engine = db.make_engine(settings.spool_database_url,
                                  busy_timeout_seconds=settings.database_busy_timeout_seconds, checkpoints=False)
    spool.create(spool_engine, preallocate=True)
    # The back process builds its pipeline (the lexicon takes seconds) while this process checks the same
    # settings, so a broken practice lexicon or template folder stops start-up with its own message
    # instead of a back process that fails over and over. (Mail spooled before a crash or a stop needs no
    # wake-up: the back process turns it into entries as it starts.)
    back = BackProcess(settings)
    writer: spool.SpoolWriter | None = None
    try:
        intake.build(settings)
        writer = spool.SpoolWriter(spool_engine, max_batch=settings.writer_max_batch, on_committed=back.wake)
        controller = ReceiverController(Handler(settings=settings, engine=engine, writer=writer), settings=settings)
        controller.start()
    except BaseException:
        if writer is not None:
            writer.close()
        back.stop()
        engine.dispose()
        spool_engine.dispose()
        raise
    log.info(
        "journal-relay listening on %s for *@%s; outbound via %s",
        settings.listen, settings.domain, "relay" if settings.relay else f"folder {settings.outbox_dir}",
    )
    return Running(engine, spool_engine, writer, controller, back)


def serve(settings: Settings) -> None:
    """Run until SIGTERM or Ctrl-C, then stop cleanly."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running = start(settings)
    try:
        while not stop.wait(timeout=1.0):
            pass
    finally:
        running.stop()
        log.info("journal-relay stopped")
