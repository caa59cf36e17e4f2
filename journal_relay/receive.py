"""The SMTP receiver: decides every answer, enforces the limits; the only module that listens on a socket."""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, TLSSetupException, syntax
from aiosmtpd.smtp import Session as SMTPSession
from sqlalchemy.engine import Engine

from journal_relay import db, intake, spool, store, throttle
from journal_relay.config import Settings
from journal_relay.parse import count_hops

log = logging.getLogger(__name__)
AIOSMTPD_LOGGER = "mail.log"

# Every answer the receiver gives, in one place.
OK_STORED = "250 2.0.0 Stored. Thank you for writing."
OK_SENDER = "250 2.1.0 OK"
OK_RCPT = "250 2.1.5 OK"
ERR_421_TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address; please try again later."
ERR_451_STORAGE = "451 4.3.0 We could not store your message just now; your mail server will try again."
ERR_451_RATE_IP = "451 4.7.1 Too many messages from your address just now; your server will retry later."
ERR_451_RATE_SENDER = "451 4.7.1 Too many messages from this sender just now; your server will retry later."
ERR_452_TOO_MANY_RCPT = "452 4.5.3 Too many recipients; send the rest in another message."
ERR_500_COMMAND_TOO_LONG = "500 5.5.2 Command line too long."
ERR_500_LINE_TOO_LONG = "500 5.5.2 Line too long: a line of the message is over {limit} bytes."
ERR_530_STARTTLS = "530 5.7.0 Must issue a STARTTLS command first; mail is taken here only encrypted."
ERR_550_NO_SUCH_ADDRESS = "550 5.1.1 No such private journal address here; check the address you were given."
ERR_554_LOOP = "554 5.4.6 Too many hops: this message is looping between mail servers."
ERR_550_EMPTY = "550 5.6.0 The message has no content."
ERR_552_TOO_BIG = "552 5.3.4 The message is too big: the limit here is {limit}; please send a smaller one."

# aiosmtpd enforces some of our limits itself and answers in its own words (exact strings of aiosmtpd 1.4.6;
# tests/test_limits.py pins them). We reword them on the way out so every answer above is ours.
_AIOSMTPD_REPLIES = {
    "size_at_mail": "552 Error: message size exceeds fixed maximum message size",
    "size_in_data": "552 Error: Too much mail data",
    "line_in_data": "500 Line too long (see RFC5321 4.5.3.1.6)",
    "command_too_long": "500 Command line too long",
    "need_starttls": "530 Must issue a STARTTLS command first",
}


def reworded(*, max_message_bytes: int, max_line_bytes: int) -> dict[str, str]:
    """aiosmtpd's reply -> ours, for the limits aiosmtpd enforces on our behalf."""
    too_big = ERR_552_TOO_BIG.format(limit=human_size(max_message_bytes))
    return {
        _AIOSMTPD_REPLIES["size_at_mail"]: too_big,
        _AIOSMTPD_REPLIES["size_in_data"]: too_big,
        _AIOSMTPD_REPLIES["line_in_data"]: ERR_500_LINE_TOO_LONG.format(limit=max_line_bytes),
        _AIOSMTPD_REPLIES["command_too_long"]: ERR_500_COMMAND_TOO_LONG,
        _AIOSMTPD_REPLIES["need_starttls"]: ERR_530_STARTTLS,
    }


def human_size(size: int) -> str:
    """10485760 -> '10 MB', 5000 -> '5000 bytes': for people reading a bounce."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    return f"{size} bytes"


def source_key(peer: Any) -> str:
    """The address that limits count against: the IP, or for IPv6 the /64 (one subscriber's network)."""
    try:
        address = ipaddress.ip_address(peer[0])
    except (TypeError, ValueError, IndexError):
        return str(peer)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


# aiosmtpd reads every MAIL and RCPT address with the email package's full RFC 5322 parser (and defines a
# class on each call): a third of the CPU a message costs it. A plain <local@host> reads the same under
# any parser, so it takes this expression; anything else (quoted local parts, address literals, comments,
# non-ASCII) still goes to aiosmtpd. tests/test_receive.py checks that both give the same answers.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@{_LABEL}(?:\.{_LABEL})*)>([^(]*)\Z")


def plain_address(arg: str) -> tuple[str, str] | None:
    """(address, parameters) of a MAIL or RCPT argument like '<a@b.example> SIZE=2048', or None when the
    argument is not that plain."""
    match = _PLAIN_ADDRESS.match(arg)
    if match is None:
        return None
    return match.group(1), match.group(2).lstrip(" \t")


class TLSSetupError(OSError):
    """The STARTTLS certificate or key cannot be used; raised at start-up, never during a session."""


def starttls_context(*, cert: Path, key: Path) -> ssl.SSLContext:
    """The server-side context for STARTTLS, built once so a bad certificate stops start-up, not a session."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except OSError as exc:  # ssl.SSLError is an OSError too: bad PEM, key not matching the certificate
        raise TLSSetupError(f"cannot use TLS certificate {cert} with key {key}: {exc}") from None
    return context


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class KnownAddresses:
    """Private addresses RCPT found lately, and whose they are, so a busy sender costs no database query
    per recipient.

    Only hits are remembered: an address registered a moment ago must never meet a remembered 550.
    """

    def __init__(self, *, ttl_seconds: float, max_size: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max_size = max_size
        self._clock = clock
        self._until: dict[str, tuple[int, float]] = {}

    def get(self, address: str) -> int | None:
        """The client id of a remembered address, or None."""
        found = self._until.get(store.normalise_address(address))
        return found[0] if found is not None and found[1] > self._clock() else None

    def __contains__(self, address: str) -> bool:
        return self.get(address) is not None

    def add(self, address: str, client_id: int) -> None:
        if self._ttl <= 0:
            return
        if len(self._until) >= self._max_size:
            self._until.clear()  # bounded memory; the next lookups simply ask the database again
        self._until[store.normalise_address(address)] = (client_id, self._clock() + self._ttl)


# The address a session's limits count against, worked out once per connection, rides on aiosmtpd's
# Session under this name.
_SOURCE = "journal_relay_source"


def session_source(session: SMTPSession) -> str:
    source: str | None = getattr(session, _SOURCE, None)
    if source is None:
        source = source_key(session.peer)
        setattr(session, _SOURCE, source)
    return source


# The client ids accepted at RCPT ride on aiosmtpd's Envelope (a new one per transaction) under this name.
_CLIENT_IDS = "journal_relay_client_ids"


def accepted_client_ids(envelope: Envelope) -> list[int]:
    ids: list[int] = getattr(envelope, _CLIENT_IDS, None) or []
    setattr(envelope, _CLIENT_IDS, ids)
    return ids


class Handler:
    """aiosmtpd handler: RCPT accepts known private addresses, DATA keeps the message in the intake spool."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        writer: spool.SpoolWriter,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._writer = writer
        self._clock = clock
        self._monotonic = monotonic
        self._per_ip = throttle.TokenBuckets(
            per_minute=settings.rate_per_ip_per_minute, burst=settings.rate_per_ip_burst
        )
        self._per_sender = throttle.TokenBuckets(
            per_minute=settings.rate_per_sender_per_minute, burst=settings.rate_per_sender_burst
        )
        self._known = KnownAddresses(ttl_seconds=settings.rcpt_cache_seconds)

    def _client_id(self, address: str) -> int | None:
        """Whose private address this is, or None."""
        with db.reading(self._engine) as session:
            try:
                return store.client_by_address(session=session, address=address, domain=self._settings.domain).id
            except store.NotFound:
                return None

    async def handle_MAIL(
        self, server: SMTP, session: SMTPSession, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        # Counted at MAIL, before any database work, so a flood costs us as little as possible; 451 because
        # a real mail server queues and retries, and the flood cannot crowd out other sources meanwhile.
        now = self._monotonic()
        source = session_source(session)
        if not self._per_ip.take(source, now=now):
            log.warning("rate limit: too many messages from %s", source)
            return ERR_451_RATE_IP
        if not self._per_sender.take(address.lower(), now=now):
            log.warning("rate limit: too many messages from one sender via %s", source)
            return ERR_451_RATE_SENDER
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return OK_SENDER

    async def handle_RCPT(
        self, server: SMTP, session: SMTPSession, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self._settings.max_recipients:
            return ERR_452_TOO_MANY_RCPT
        client_id = self._known.get(address)
        if client_id is None:
            try:
                client_id = await asyncio.get_running_loop().run_in_executor(None, self._client_id, address)
            except Exception as exc:  # noqa: BLE001 - any storage failure must become a retry, not a bounce
                log.error("recipient lookup failed: %s", type(exc).__name__)
                return ERR_451_STORAGE
            if client_id is None:
                log.info("refused unknown recipient from peer %s", session.peer[0] if session.peer else "?")
                return ERR_550_NO_SUCH_ADDRESS
            self._known.add(address, client_id)
        envelope.rcpt_tos.append(address)
        accepted_client_ids(envelope).append(client_id)
        return OK_RCPT

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if not raw.strip():
            return ERR_550_EMPTY
        delivery = intake.Delivery(
            raw=raw,
            envelope_from=envelope.mail_from or "",
            client_ids=tuple(dict.fromkeys(accepted_client_ids(envelope))),
            peer=str(session.peer[0]) if session.peer else "",
            helo=session.host_name or "",
        )
        if count_hops(raw) > self._settings.max_hops:
            log.warning("refused a looping message from peer %s", delivery.peer)
            return ERR_554_LOOP
        try:
            await self._writer.spool(intake.take(delivery, now=self._clock()))
        except Exception as exc:  # noqa: BLE001 - never a 500 with internals; the sender retries
            log.error("message from peer %s not stored: %s", delivery.peer, type(exc).__name__)
            return ERR_451_STORAGE
        return OK_STORED

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            # A client that gives up on our certificate (or a scanner) is not our failure; aiosmtpd just hangs up.
            log.info("STARTTLS handshake failed: %s", type(error.__cause__).__name__)
            return ERR_451_STORAGE
        # aiosmtpd would answer "500 Error: (Type) text"; a crash is ours, so the sender should retry.
        log.error("SMTP session error: %s", type(error).__name__)
        return ERR_451_STORAGE


class _GuardedSMTP(SMTP):
    """aiosmtpd's SMTP session with our connection limit, a command and a DATA timeout, and our wording."""

    def __init__(
        self,
        handler: Handler,
        *,
        connections: throttle.Connections,
        data_timeout: float,
        max_line_bytes: int,
        replies: Mapping[str, str],
        **kwargs: Any,
    ) -> None:
        # aiosmtpd sizes its stream reader from this attribute inside __init__, so it is set first.
        self.line_length_limit = max_line_bytes
        self._jr_connections = connections
        self._jr_data_timeout = data_timeout
        self._jr_replies = dict(replies)
        super().__init__(handler, **kwargs)
        # aiosmtpd keeps this table on the class and grows it on every EHLO of every session; one per session
        # keeps each session's command length limit its own.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = plain_address(arg)
        if plain is None or (self.local_part_limit and len(plain[0].rpartition("@")[0]) > self.local_part_limit):
            return super()._getaddr(arg)
        return plain

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            await super().push(self._jr_replies.get(status, status))
        else:
            await super().push(status)

    async def _handle_client(self) -> None:
        assert self.session is not None and self.transport is not None
        source = session_source(self.session)
        if not self._jr_connections.open(source):
            log.warning("refused a connection from %s: too many open (%d in total)", source,
                        self._jr_connections.total)
            try:
                await self.push(ERR_421_TOO_MANY_CONNECTIONS)
            except ConnectionError:
                pass  # they left first; nothing to tell them
            self.transport.close()
            return
        try:
            await super()._handle_client()
        finally:
            # Runs however the session ends: QUIT, timeout and dropped connections all cancel this task.
            self._jr_connections.close(source)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        # The message itself may take longer than a command; afterwards the command timeout applies again.
        self._reset_timeout(self._jr_data_timeout)
        await super().smtp_DATA(arg)
        if self.transport is not None:
            self._reset_timeout()


class ReceiverController(Controller):
    """aiosmtpd's Controller with our limits applied to every connection."""

    def __init__(self, handler: Handler, *, settings: Settings, **kwargs: Any) -> None:
        self._settings = settings
        # aiosmtpd logs every command (addresses included) at INFO and every DATA line (the journal itself)
        # at DEBUG; we log ids ourselves, so it may only speak up about problems.
        aiosmtpd_log = logging.getLogger(AIOSMTPD_LOGGER)
        if aiosmtpd_log.getEffectiveLevel() < logging.WARNING:
            aiosmtpd_log.setLevel(logging.WARNING)
        self._starttls = (
            starttls_context(cert=settings.tls_cert, key=settings.tls_key)
            if settings.tls_cert is not None and settings.tls_key is not None
            else None
        )
        # Shared by every session; only the controller's event loop thread touches it.
        self._connections = throttle.Connections(
            max_total=settings.max_connections, max_per_key=settings.max_connections_per_ip
        )
        self._replies = reworded(
            max_message_bytes=settings.max_message_bytes, max_line_bytes=settings.max_line_bytes
        )
        super().__init__(
            handler,
            hostname=settings.listen_host,
            port=settings.listen_port,
            **kwargs,
        )

    @property
    def open_connections(self) -> int:
        return self._connections.total

    def factory(self) -> SMTP:
        return _GuardedSMTP(
            self.handler,
            connections=self._connections,
            data_timeout=self._settings.data_timeout_seconds,
            max_line_bytes=self._settings.max_line_bytes,
            replies=self._replies,
            data_size_limit=self._settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self._settings.domain,
            ident="journal-relay",
            timeout=self._settings.command_timeout_seconds,
            tls_context=self._starttls,
            require_starttls=self._settings.tls_required,
        )
