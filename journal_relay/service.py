"""The service: receiver, deliverer and scheduler in one process, started and stopped in order."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine

from journal_relay import db, digest
from journal_relay.config import Settings
from journal_relay.deliver import Deliverer, transport_for
from journal_relay.intake import Intake
from journal_relay.receive import Handler, ReceiverController
from journal_relay.render import Renderer
from journal_relay.schedule import start_ticking
from journal_relay.screen import load_lexicon
from journal_relay.workers import PrepareWorkers

log = logging.getLogger(__name__)


@dataclass
class Running:
    engine: Engine
    writer: db.Writer
    controller: ReceiverController
    deliverer: Deliverer
    scheduler: BackgroundScheduler
    workers: PrepareWorkers | None = None

    def stop(self) -> None:
        # Stop taking mail first, then finish writes, then let the deliverer finish its current message.
        self.controller.stop()
        if self.workers is not None:
            self.workers.close()
        self.scheduler.shutdown(wait=True)
        self.writer.close()
        self.deliverer.stop()
        self.engine.dispose()


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs each command line at INFO, private addresses included: those are secrets.
    logging.getLogger("mail.log").setLevel(logging.WARNING)


def build_intake(settings: Settings) -> Intake:
    return Intake(settings=settings, lexicon=load_lexicon(settings.lexicon), renderer=Renderer(settings.templates_dir))


def start(settings: Settings) -> Running:
    engine = db.make_engine(settings.database_url, busy_timeout_seconds=settings.database_busy_timeout_seconds)
    db.create_schema(engine)
    pipeline = build_intake(settings)
    deliverer = Deliverer(
        engine=engine, transport=transport_for(settings), retry_cap_seconds=settings.delivery_retry_max_seconds
    )
    writer = db.Writer(engine, max_batch=settings.writer_max_batch)
    workers = (
        PrepareWorkers(settings=settings, lexicon=pipeline.lexicon, count=settings.intake_workers)
        if settings.intake_workers > 0 and settings.auth_mode != "direct"
        else None
    )
    handler = Handler(settings=settings, engine=engine, writer=writer, pipeline=pipeline, workers=workers,
                      on_queued=deliverer.wake)
    try:
        # First, so a bad certificate or a busy port stops start-up before any thread works.
        controller = ReceiverController(handler, settings=settings)
        controller.start()
    except BaseException:
        if workers is not None:
            workers.close()
        writer.close()
        engine.dispose()
        raise
    deliverer.start()

    def tick(now: datetime) -> None:
        if digest.send_due(engine=engine, settings=settings, renderer=pipeline.renderer, now=now):
            deliverer.wake()

    scheduler = start_ticking(tick, every_seconds=settings.tick_seconds)
    log.info(
        "journal-relay listening on %s for *@%s; outbound via %s",
        settings.listen, settings.domain, "relay" if settings.relay else f"folder {settings.outbox_dir}",
    )
    return Running(engine, writer, controller, deliverer, scheduler, workers)


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
