"""Real parts for tests: our receiver on a real socket, a second real SMTP server catching outbound mail,
and a fresh SQLite file per test."""

from __future__ import annotations

import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.engine import Engine

from journal_relay import db, intake, service, spool, store
from journal_relay.config import Settings
from journal_relay.runner import Runner

DOMAIN = "journal.test"
THERAPIST = "ada@practice.test"
CLIENT_SENDER = "client@mail.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Caught:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes = field(repr=False)

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]



def _kind_of(caught: Caught) -> str:
    subject = str(caught.message["Subject"]).strip()
    if subject.startswith("URGENT"):
        return "alert"
    if subject.startswith("Received"):
        return "receipt"
    return "digest"


@dataclass
class Catcher:
    """A real SMTP server standing in for the practice's relay."""

    port: int
    messages: list[Caught] = field(default_factory=list)
    refuse_with: str | None = None  # e.g. "451 4.3.0 try later"
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if self.refuse_with:
            return self.refuse_with
        with self.lock:
            caught = Caught(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)  # type: ignore[attr-defined]
            self.messages.append(caught)
        return "250 OK"

    def of_kind(self, kind: str) -> list[Caught]:
        with self.lock:
            return [m for m in self.messages if _kind_of(m) == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 10.0) -> list[Caught]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of_kind(kind)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        return self.of_kind(kind)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("JOURNAL_RELAY_"):
            monkeypatch.delenv(name)


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    sink = Catcher(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
def settings(tmp_path: Path, catcher: Catcher) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'journal.db'}",
        listen=f"127.0.0.1:{free_port()}",
        domain=DOMAIN,
        relay=f"smtp://127.0.0.1:{catcher.port}",
        outbox_dir=tmp_path / "outbox",
        from_address=f"journal-relay@{DOMAIN}",
        tick_seconds=3600,
        database_busy_timeout_seconds=0.5,
        # Tests pump whole corpora from one address and sender; tests/test_limits.py sets its own rates.
        rate_per_ip_burst=100_000,
        rate_per_sender_burst=100_000,
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    eng = db.make_engine(settings.database_url, busy_timeout_seconds=settings.database_busy_timeout_seconds)
    db.create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def running(settings: Settings, engine: Engine) -> Iterator[service.Running]:
    """The whole service (receiver, deliverer, scheduler) on real sockets."""
    run = service.start(settings)
    yield run
    run.stop()


@dataclass
class Practice:
    """A therapist and one client, registered through the library."""

    engine: Engine
    settings: Settings
    address: str
    client_id: int

    def add_session(self, starts_at: datetime) -> int:
        with db.transaction(self.engine) as session:
            client = store.client_by_address(session=session, address=self.address, domain=DOMAIN)
            (appointment,) = store.add_appointments(
                session=session, client=client, starts=[starts_at], now=starts_at - timedelta(days=30)
            )
            assert appointment.id is not None
            return appointment.id


def register(engine: Engine, settings: Settings, *, therapist: str = THERAPIST, name: str = "Client One",
             sender: str = CLIENT_SENDER, lead_minutes: int = 120) -> Practice:
    now = datetime.now(UTC)
    with db.transaction(engine) as session:
        try:
            store.therapist_by_email(session=session, email=therapist)
        except store.NotFound:
            store.add_therapist(session=session, name="Dr Ada", email=therapist, timezone="Europe/London",
                                digest_lead_minutes=lead_minutes, now=now)
        client = store.add_client(session=session, therapist_email=therapist, name=name, senders=[sender], now=now)
        assert client.id is not None
        return Practice(engine, settings, f"{client.token}@{DOMAIN}", client.id)


@pytest.fixture
def practice(engine: Engine, settings: Settings) -> Practice:
    return register(engine, settings)


_counter = iter(range(1, 1_000_000))


def make_message(*, to: str, sender: str = CLIENT_SENDER, body: str = "An ordinary day.",
                 subject: str = "journal", message_id: str | None = None, html: str | None = None,
                 headers: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or f"<test-{next(_counter)}-{time.time_ns()}@mail.test>"
    for name, value in (headers or {}).items():
        msg[name] = value
    if html is None:
        msg.set_content(body)
    else:
        msg.set_content(html, subtype="html")
    return msg.as_bytes()


SendResult = tuple[int, str]


def send(settings: Settings, raw: bytes, *, to: str, mail_from: str = CLIENT_SENDER) -> SendResult:
    """Speak SMTP to our receiver; returns the DATA (or refused RCPT) code and text."""
    with smtplib.SMTP(settings.listen_host, settings.listen_port, timeout=30) as client:
        client.ehlo("sender.test")
        client.mail(mail_from)
        code, text = client.rcpt(to)
        if code >= 300:
            return code, text.decode()
        code, text = client.data(raw)
    if code == 250:
        processed(settings)
    return code, text.decode()


def spool_message(settings: Settings, raw: bytes, *, to: str, now: datetime, mail_from: str = CLIENT_SENDER) -> None:
    """Put a message in the spool as the receiver would after RCPT `to`."""
    engine = db.make_engine(settings.database_url)
    spool_engine = db.make_engine(settings.spool_database_url)
    try:
        spool.create(spool_engine)
        with db.reading(engine) as session:
            client = store.client_by_address(session=session, address=to, domain=settings.domain)
        assert client.id is not None
        delivery = intake.Delivery(raw=raw, envelope_from=mail_from, client_ids=(client.id,))
        writer = spool.SpoolWriter(spool_engine)
        writer.submit(intake.take(delivery, now=now)).result()
        writer.close()
    finally:
        engine.dispose()
        spool_engine.dispose()


def runner_for(settings: Settings, pipeline: intake.Intake | None = None) -> Runner:
    """The back process's runner, here in the test's process."""
    return Runner(engine=db.make_engine(settings.database_url), spool_engine=db.make_engine(settings.spool_database_url),
                  pipeline=pipeline or intake.build(settings), on_queued=lambda: None)


def ingest(engine: Engine, settings: Settings, raw: bytes, *, to: str, now: datetime,
           mail_from: str = CLIENT_SENDER, pipeline: intake.Intake | None = None) -> int:
    """The intake pipeline without the SMTP conversation: spool the message as the receiver would, then run
    the back process's runner once, here. Returns how many spooled messages it stored."""
    spool_message(settings, raw, to=to, now=now, mail_from=mail_from)
    runner = runner_for(settings, pipeline)
    stored = runner.run_once(now=now)
    runner.remove_stored()  # as the back process does when the spool is idle
    return stored


def processed(settings: Settings, timeout: float = 20.0) -> None:
    """Wait until the back process has turned everything spooled into entries (a 250 means spooled)."""
    engine = db.make_engine(settings.spool_database_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with db.reading(engine) as session:
                if spool.size(session=session) == 0:
                    return
            time.sleep(0.005)
    finally:
        engine.dispose()
    raise AssertionError(f"the spool still holds messages after {timeout} s")


Sender = Callable[..., SendResult]
