"""Alerts and receipts: queued in the outbox, delivered to a real SMTP relay, retried, never doubled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from journal_relay import db
from journal_relay.deliver import Deliverer, FolderTransport, SMTPTransport
from journal_relay.models import Outbound
from tests.conftest import CLIENT_SENDER, THERAPIST, ingest, make_message, send

RISK = "I want to kill myself."


def outbound(engine):  # type: ignore[no-untyped-def]
    with db.reading(engine) as session:
        return session.exec(select(Outbound).order_by(Outbound.id)).all()


def test_flagged_entry_alerts_the_therapist_within_seconds(running, settings, catcher, practice):
    assert send(settings, make_message(to=practice.address, body=RISK), to=practice.address)[0] == 250
    (alert,) = catcher.wait_for("alert")
    assert alert.rcpt_tos == [THERAPIST]
    message = alert.message
    assert message["Auto-Submitted"] == "auto-generated"
    assert "kill myself" in message.get_body(("plain",)).get_content()
    assert message.get_body(("html",)) is not None


def test_first_message_gets_a_receipt_and_the_second_does_not(running, settings, catcher, practice):
    send(settings, make_message(to=practice.address), to=practice.address)
    send(settings, make_message(to=practice.address), to=practice.address)
    (receipt,) = catcher.wait_for("receipt")
    assert receipt.rcpt_tos == [CLIENT_SENDER]
    assert receipt.message["Auto-Submitted"] == "auto-replied"
    text = receipt.message.get_body(("plain",)).get_content()
    assert "not watched in real time" in text and "emergency" in text
    catcher.wait_for("receipt", count=2, timeout=1.0)
    assert len(catcher.of_kind("receipt")) == 1


def test_flagged_message_gets_a_receipt_too(running, settings, catcher, practice):
    send(settings, make_message(to=practice.address), to=practice.address)
    send(settings, make_message(to=practice.address, body=RISK), to=practice.address)
    assert len(catcher.wait_for("receipt", count=2)) == 2


def test_no_receipt_to_automatic_mail_or_null_sender(running, settings, catcher, engine, practice):
    auto = make_message(to=practice.address, body=RISK, headers={"Auto-Submitted": "auto-replied"})
    send(settings, auto, to=practice.address)
    send(settings, make_message(to=practice.address, body=RISK), to=practice.address, mail_from="")
    catcher.wait_for("alert", count=2)
    assert catcher.of_kind("receipt") == []


def test_no_receipt_or_digest_entry_for_unregistered_sender_but_risk_still_alerts(running, settings, catcher, practice):
    raw = make_message(to=practice.address, sender="stranger@evil.test", body=RISK)
    send(settings, raw, to=practice.address, mail_from="stranger@evil.test")
    (alert,) = catcher.wait_for("alert")
    assert "unverified sender" in str(alert.message["Subject"])
    assert catcher.of_kind("receipt") == []


def test_relay_down_then_up_delivers_once(settings, engine, practice, catcher):
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    ingest(engine, settings, make_message(to=practice.address, body=RISK), to=practice.address, now=now)
    deliverer = Deliverer(engine=engine, transport=SMTPTransport(settings.relay or ""), retry_cap_seconds=600,
                          clock=lambda: now)
    catcher.refuse_with = "451 4.3.0 relay busy"
    assert deliverer.run_once(now=now) == (0, 2)
    rows = outbound(engine)
    assert all(r.status == "pending" and r.attempts == 1 and "451" in r.last_error for r in rows)
    assert deliverer.run_once(now=now) == (0, 0)  # backing off: not due yet
    catcher.refuse_with = None
    later = now + timedelta(minutes=5)
    assert deliverer.run_once(now=later) == (2, 0)
    assert deliverer.run_once(now=later + timedelta(hours=1)) == (0, 0)
    assert len(catcher.messages) == 2
    assert all(r.status == "sent" for r in outbound(engine))


def test_unreachable_relay_is_retried_not_lost(settings, engine, practice):
    from tests.conftest import free_port

    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    ingest(engine, settings, make_message(to=practice.address), to=practice.address, now=now)
    dead = Deliverer(engine=engine, transport=SMTPTransport(f"smtp://127.0.0.1:{free_port()}"),
                     retry_cap_seconds=600)
    assert dead.run_once(now=now) == (0, 1)
    (row,) = outbound(engine)
    assert row.status == "pending" and "unreachable" in row.last_error and row.next_attempt_at > now


def test_folder_transport_writes_one_eml_per_message(settings, engine, practice, tmp_path):
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    ingest(engine, settings, make_message(to=practice.address, body=RISK), to=practice.address, now=now)
    folder = tmp_path / "mail-out"
    assert Deliverer(engine=engine, transport=FolderTransport(folder), retry_cap_seconds=60).run_once(now=now) == (2, 0)
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["00000001-alert.eml", "00000002-receipt.eml"]


def test_receipt_threads_under_a_long_message_id(running, settings, catcher, practice):
    long_id = "<CAF" + "x" * 90 + "@mail.gmail.com>"
    send(settings, make_message(to=practice.address, message_id=long_id), to=practice.address)
    (receipt,) = catcher.wait_for("receipt")
    assert receipt.raw.count(long_id.encode()) == 2  # In-Reply-To and References, as bare tokens
