"""Worker processes for the pure intake stages (parse -> authenticate -> screen), beside the event loop.

The stages are pure and their result is a frozen dataclass, so a message costs one round of pickling; in
exchange the parsing no longer holds the receiver's GIL, which the SMTP sessions and the writer need.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from journal_relay import intake
from journal_relay.config import Settings
from journal_relay.screen import Lexicon

log = logging.getLogger(__name__)

# What a worker process needs, set once by its initializer: the settings and lexicon cross the pipe once,
# not with every message.
_worker_stages: tuple[Settings, Lexicon] | None = None


def _start_worker(settings: Settings, lexicon: Lexicon) -> None:
    global _worker_stages
    # Ctrl-C reaches the whole process group; the service stops its workers itself, in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_stages = (settings, lexicon)


def _prepare_in_worker(delivery: intake.Delivery) -> intake.Prepared:
    assert _worker_stages is not None, "worker started without its initializer"
    settings, lexicon = _worker_stages
    return intake.prepare(delivery, settings=settings, lexicon=lexicon)


class PrepareWorkers:
    """A pool of `count` processes running intake.prepare. Started with 'spawn': forking the service, whose
    threads may hold locks at that moment, could leave a child stuck on one."""

    def __init__(self, *, settings: Settings, lexicon: Lexicon, count: int) -> None:
        self._settings = settings
        self._lexicon = lexicon
        self._count = count
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._count,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self._settings, self._lexicon),
        )

    async def prepare(self, delivery: intake.Delivery) -> intake.Prepared:
        """intake.prepare in a worker. Raises MailLoop as it does; a worker that dies is replaced, and the
        message it had (or any queued with it) is kept for staff, like any message the stages fail on."""
        pool = self._pool
        try:
            return await asyncio.wrap_future(pool.submit(_prepare_in_worker, delivery))
        except BrokenProcessPool:
            log.error("an intake worker process died; starting new ones, message kept in quarantine")
            if self._pool is pool:
                self._pool = self._new_pool()
                pool.shutdown(wait=False, cancel_futures=True)
            return intake.not_processed(delivery.raw, "BrokenProcessPool")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
