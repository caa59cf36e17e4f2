"""Scheduler wiring: APScheduler runs the digest tick; all schedule state lives in our own tables."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)


def start_ticking(tick: Callable[[datetime], None], *, every_seconds: float) -> BackgroundScheduler:
    """Call tick(now) every `every_seconds`, the first one `every_seconds` after start.

    The job itself is stateless: what is due is read from the database each time, so a restart or a
    long outage loses nothing. Never skip a late run (misfire_grace_time=None) and never run two at
    once (max_instances=1, coalesce).
    """

    def run() -> None:
        try:
            tick(datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - log and try again next tick
            log.error("scheduler tick failed: %s", type(exc).__name__)

    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        run,
        "interval",
        seconds=every_seconds,
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
        id="digest-tick",
    )
    scheduler.start()
    return scheduler
