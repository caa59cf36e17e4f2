"""The SMTP receiver: decides every RCPT and DATA answer; the only module that listens on a socket."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SMTPSession
from sqlalchemy.engine import Engine

from journal_relay import db, intake, store
from journal_relay.config import Settings

log = logging.getLogger(__name__)

# Every answer the receiver gives, in one place.
OK_STORED = "250 2.0.0 Stored. Thank you for writing."
OK_RCPT = "250 2.1.5 OK"
ERR_451_STORAGE = "451 4.3.0 We could not store your message just now; your mail server will try again."
ERR_452_TOO_MANY_RCPT = "452 4.5.3 Too many recipients; send the rest in another message."
ERR_550_NO_SUCH_ADDRESS = "550 5.1.1 No such private journal address here; check the address you were given."
ERR_550_EMPTY = "550 5.6.0 The message has no content."

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class KnownAddresses:
    """Private addresses RCPT found lately, so a busy sender costs no database query per recipient.

    Only hits are remembered: an address registered a moment ago must never meet a remembered 550.
    """

    def __init__(self, *, ttl_seconds: float, max_size: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max_size = max_size
        self._clock = clock
        self._until: dict[str, float] = {}

    def __contains__(self, address: str) -> bool:
        until = self._until.get(store.normalise_address(address))
        return until is not None and until > self._clock()

    def add(self, address: str) -> None:
        if self._ttl <= 0:
            return
        if len(self._until) >= self._max_size:
            self._until.clear()  # bounded memory; the next lookups simply ask the database again
        self._until[store.normalise_address(address)] = self._clock() + self._ttl


class Handler:
    """aiosmtpd handler: RCPT accepts known private addresses, DATA runs the intake pipeline."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        writer: db.Writer,
        pipeline: intake.Intake,
        on_queued: Callable[[], None] = lambda: None,
        clock: Clock = utc_now,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._writer = writer
        self._intake = pipeline
        self._on_queued = on_queued
        self._clock = clock
        self._known = KnownAddresses(ttl_seconds=settings.rcpt_cache_seconds)

    def _is_private_address(self, address: str) -> bool:
        with db.reading(self._engine) as session:
            try:
                store.client_by_address(session=session, address=address, domain=self._settings.domain)
            except store.NotFound:
                return False
        return True

    async def handle_RCPT(
        self, server: SMTP, session: SMTPSession, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self._settings.max_recipients:
            return ERR_452_TOO_MANY_RCPT
        if address not in self._known:
            try:
                known = await asyncio.get_running_loop().run_in_executor(None, self._is_private_address, address)
            except Exception as exc:  # noqa: BLE001 - any storage failure must become a retry, not a bounce
                log.error("recipient lookup failed: %s", type(exc).__name__)
                return ERR_451_STORAGE
            if not known:
                log.info("refused unknown recipient from peer %s", session.peer[0] if session.peer else "?")
                return ERR_550_NO_SUCH_ADDRESS
            self._known.add(address)
        envelope.rcpt_tos.append(address)
        return OK_RCPT

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if not raw.strip():
            return ERR_550_EMPTY
        delivery = intake.Delivery(
            raw=raw,
            envelope_from=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            peer=str(session.peer[0]) if session.peer else "",
            helo=session.host_name or "",
        )
        try:
            job = intake.process(delivery, intake=self._intake, now=self._clock())
            outcome = await asyncio.wrap_future(self._writer.submit(job))
        except Exception as exc:  # noqa: BLE001 - never a 500 with internals; the sender retries
            log.error("message from peer %s not stored: %s", delivery.peer, type(exc).__name__)
            return ERR_451_STORAGE
        if outcome.queued:
            self._on_queued()
        return OK_STORED

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd would answer "500 Error: (Type) text"; a crash is ours, so the sender should retry.
        log.error("SMTP session error: %s", type(error).__name__)
        return ERR_451_STORAGE


class ReceiverController(Controller):
    """aiosmtpd's Controller with our limits applied to every connection."""

    def __init__(self, handler: Handler, *, settings: Settings, **kwargs: Any) -> None:
        self._settings = settings
        super().__init__(
            handler,
            hostname=settings.listen_host,
            port=settings.listen_port,
            **kwargs,
        )

    def factory(self) -> SMTP:
        return SMTP(
            self.handler,
            data_size_limit=self._settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self._settings.domain,
            ident="journal-relay",
            timeout=self._settings.data_timeout_seconds,
        )
