"""The deliverer: drains the outbox to the SMTP relay (or a folder); the only SMTP client."""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from sqlalchemy.engine import Engine

from journal_relay import db, outbox
from journal_relay.config import Settings

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The relay did not take the message; `reason` is a code and a class of failure, never content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Transport(Protocol):
    def send(self, *, outbound_id: int, kind: str, sender: str, recipient: str, raw: bytes) -> None: ...


class FolderTransport:
    """Writes one .eml file per message: the embedded default when no relay is configured."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def send(self, *, outbound_id: int, kind: str, sender: str, recipient: str, raw: bytes) -> None:
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            final = self._folder / f"{outbound_id:08d}-{kind}.eml"
            partial = final.with_suffix(".eml.part")
            with partial.open("wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            # Rename is atomic: a reader never sees half a message, and a resend overwrites, not duplicates.
            partial.replace(final)
        except OSError as exc:
            raise DeliveryFailed(f"folder: {type(exc).__name__} {exc.errno}") from None


class SMTPTransport:
    """Sends through the configured relay, one connection per batch of due messages."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self._scheme = parts.scheme
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._timeout = timeout

    def send(self, *, outbound_id: int, kind: str, sender: str, recipient: str, raw: bytes) -> None:
        try:
            client: smtplib.SMTP
            if self._scheme == "smtps":
                client = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout,
                                          context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            with client:
                if self._scheme == "smtp+starttls":
                    client.starttls(context=ssl.create_default_context())
                if self._user:
                    client.login(self._user, self._password or "")
                refused = client.sendmail(sender, [recipient], raw)
            if refused:
                code = next(iter(refused.values()))[0]
                raise DeliveryFailed(f"relay refused recipient: {code}")
        except smtplib.SMTPRecipientsRefused as exc:
            codes = ",".join(str(v[0]) for v in exc.recipients.values())
            raise DeliveryFailed(f"relay refused recipient: {codes}") from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"relay answered {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"relay unreachable: {type(exc).__name__}") from None


def transport_for(settings: Settings) -> Transport:
    if settings.relay:
        return SMTPTransport(settings.relay)
    return FolderTransport(settings.outbox_dir)


class Deliverer:
    """Sends due outbox rows, marks each sent right after the relay took it, backs off on failure."""

    def __init__(
        self,
        *,
        engine: Engine,
        transport: Transport,
        retry_cap_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        idle_seconds: float = 5.0,
    ) -> None:
        self._engine = engine
        self._transport = transport
        self._cap = retry_cap_seconds
        self._clock = clock
        self._idle = idle_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, *, now: datetime) -> tuple[int, int]:
        """Try every row due at `now`; returns (sent, failed)."""
        with db.reading(self._engine) as session:
            rows = [
                (row.id, row.kind, row.sender, row.recipient, row.raw)
                for row in outbox.due(session=session, now=now)
            ]
        sent = failed = 0
        for outbound_id, kind, sender, recipient, raw in rows:
            if self._stop.is_set():
                break  # stopping: the rest stay queued for the next start
            assert outbound_id is not None
            try:
                self._transport.send(outbound_id=outbound_id, kind=kind, sender=sender, recipient=recipient, raw=raw)
            except DeliveryFailed as exc:
                failed += 1
                log.warning("outbound %s (%s) not delivered: %s", outbound_id, kind, exc.reason)
                with db.transaction(self._engine) as session:
                    outbox.mark_failed(session=session, outbound_id=outbound_id, error=exc.reason,
                                       now=now, cap_seconds=self._cap)
                continue
            sent += 1
            with db.transaction(self._engine) as session:
                outbox.mark_sent(session=session, outbound_id=outbound_id, now=now)
            log.info("outbound %s (%s) delivered", outbound_id, kind)
        return sent, failed

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="journal-relay-deliverer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once(now=self._clock())
                with db.reading(self._engine) as session:
                    next_at = outbox.next_due_at(session=session)
            except Exception as exc:  # noqa: BLE001 - the loop must outlive a database blip
                log.error("deliverer pass failed: %s", type(exc).__name__)
                next_at = None
            wait = self._idle
            if next_at is not None:
                wait = max(0.0, min(wait, (next_at - self._clock()).total_seconds()))
            self._wake.wait(timeout=wait)
