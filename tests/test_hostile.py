"""Hostile and broken mail through the real receiver: every message answered, none crashing, no good one lost."""

from __future__ import annotations

import os
import re
import smtplib
from pathlib import Path

import pytest
from sqlmodel import select

from journal_relay import db
from journal_relay.models import Entry
from tests.conftest import CLIENT_SENDER, make_message, processed

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "mail-samples"


def cpython_corpus() -> list[Path]:
    try:
        import test  # CPython's own test package, where the distribution ships it
    except ImportError:
        return []
    folder = Path(os.path.dirname(test.__file__)) / "test_email" / "data"
    return sorted(folder.glob("msg_*.txt")) if folder.is_dir() else []


def flanker_corpus() -> list[Path]:
    folder = SHARED / "mailgun-flanker"
    return sorted(p for p in folder.rglob("*.eml")) if folder.is_dir() else []


HANDMADE = {
    "nul-byte": b"From: client@mail.test\r\nSubject: nul\r\n\r\nbefore\x00after\r\n",
    "8bit-headers": b"From: \xff\xfe <client@mail.test>\r\nSubject: caf\xe9 \xe2\x98\x95\r\n\r\nbody\r\n",
    "no-headers": b"\r\njust a body\r\n",
    "duplicated-headers": b"From: client@mail.test\r\nFrom: other@x.test\r\nMessage-ID: <a@b>\r\nMessage-ID: <c@d>\r\n"
    b"Subject: a\r\nSubject: b\r\n\r\nbody\r\n",
    "lying-charset": b"From: client@mail.test\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nna\xefve caf\xe9\r\n",
    "unknown-charset": b"From: client@mail.test\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\nqapla\r\n",
    "deep-nesting": b"From: client@mail.test\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    + b"".join(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n".encode() for i in range(200))
    + b"--b200\r\nContent-Type: text/plain\r\n\r\ndeep\r\n",
    "broken-base64": b"From: client@mail.test\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64===\r\n",
    "calendar": b"From: client@mail.test\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\n"
    b"END:VCALENDAR\r\n",
    "empty-body": b"From: client@mail.test\r\nSubject: (nothing)\r\n\r\n",
}


def send_raw(settings, raw: bytes, to: str) -> int:  # type: ignore[no-untyped-def]
    # On the wire every line ends in CRLF (smtplib converts str, not bytes).
    raw = re.sub(rb"\r?\n|\r", b"\r\n", raw)
    with smtplib.SMTP(settings.listen_host, settings.listen_port, timeout=60) as client:
        client.ehlo("sender.test")
        client.mail(CLIENT_SENDER)
        client.rcpt(to)
        return client.data(raw)[0]


def stored_ids(engine) -> set[str]:  # type: ignore[no-untyped-def]
    with db.reading(engine) as session:
        return set(session.exec(select(Entry.message_id)).all())


def run_corpus(settings, engine, practice, items: list[tuple[str, bytes]]) -> None:  # type: ignore[no-untyped-def]
    answers = {}
    for index, (name, raw) in enumerate(items):
        answers[name] = send_raw(settings, raw, practice.address)
        good = make_message(to=practice.address, message_id=f"<good-{index}@mail.test>")
        assert send_raw(settings, good, practice.address) == 250, f"good message after {name} not stored"
    refused = {name: code for name, code in answers.items() if code != 250}
    assert refused == {}, f"refused: {refused}"
    processed(settings)
    assert {f"good-{i}@mail.test" for i in range(len(items))} <= stored_ids(engine)


def test_handmade_hostile_messages(running, settings, engine, practice):
    run_corpus(settings, engine, practice, list(HANDMADE.items()))


@pytest.mark.skipif(not cpython_corpus(), reason="CPython's test_email data is not installed")
def test_cpython_email_corpus_through_intake(running, settings, engine, practice):
    run_corpus(settings, engine, practice, [(p.name, p.read_bytes()) for p in cpython_corpus()])


@pytest.mark.skipif(not flanker_corpus(), reason="../shared/mail-samples is absent")
def test_flanker_broken_mime_through_intake(running, settings, engine, practice):
    run_corpus(settings, engine, practice, [(p.name, p.read_bytes()) for p in flanker_corpus()])
