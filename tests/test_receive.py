"""The receiver's answers, over real SMTP to a real database."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from sqlmodel import select

from journal_relay import db, service
from journal_relay.models import Entry
from tests.conftest import ingest, make_message, processed, send


def entries(engine):  # type: ignore[no-untyped-def]
    with db.reading(engine) as session:
        return session.exec(select(Entry).order_by(Entry.id)).all()


def test_unknown_address_is_refused_with_550(running, settings, practice):
    code, text = send(settings, make_message(to="nobody@journal.test"), to="nobody@journal.test")
    assert code == 550 and text.startswith("5.1.1")


def test_other_domain_is_refused_with_550(running, settings, practice):
    token = practice.address.split("@")[0]
    code, _ = send(settings, make_message(to=f"{token}@elsewhere.test"), to=f"{token}@elsewhere.test")
    assert code == 550


def test_entry_is_stored_with_raw_bytes_and_own_words(running, settings, engine, practice):
    raw = make_message(to=practice.address, body="Slept badly again.\n", message_id="<one@mail.test>")
    code, text = send(settings, raw, to=practice.address)
    assert code == 250 and text.startswith("2.0.0")
    (entry,) = entries(engine)
    assert entry.message_id == "one@mail.test"
    assert entry.text == "Slept badly again."
    assert entry.status == "accepted"
    assert b"Slept badly again." in entry.raw
    assert entry.received_at.tzinfo is not None


def test_address_is_case_insensitive(running, settings, engine, practice):
    code, _ = send(settings, make_message(to=practice.address.upper()), to=practice.address.upper())
    assert code == 250
    assert len(entries(engine)) == 1


def test_repeated_message_id_is_stored_once_and_answered_250(running, settings, engine, practice):
    raw = make_message(to=practice.address, message_id="<same@mail.test>")
    assert send(settings, raw, to=practice.address)[0] == 250
    assert send(settings, raw, to=practice.address)[0] == 250
    assert len(entries(engine)) == 1


def test_unregistered_sender_is_quarantined_not_accepted(running, settings, engine, practice):
    raw = make_message(to=practice.address, sender="stranger@evil.test")
    code, _ = send(settings, raw, to=practice.address, mail_from="stranger@evil.test")
    assert code == 250
    (entry,) = entries(engine)
    assert entry.status == "quarantined"
    assert "registered" in entry.quarantine_reason


def test_locked_spool_answers_451_and_stores_nothing(running, settings, engine, practice):
    path = settings.spool_database_url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        code, text = send(settings, make_message(to=practice.address), to=practice.address)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert code == 451 and text.startswith("4.3.0")
    assert entries(engine) == []
    # The sender's retry, once the lock is gone, is taken: the writer recovers by itself.
    assert send(settings, make_message(to=practice.address), to=practice.address)[0] == 250
    processed(settings)
    assert len(entries(engine)) == 1


def test_broken_storage_answers_451_never_500(running, settings, engine, practice):
    raw_conn = sqlite3.connect(settings.spool_database_url.removeprefix("sqlite:///"))
    raw_conn.execute("DROP TABLE inbound")
    raw_conn.commit()
    raw_conn.close()
    code, text = send(settings, make_message(to=practice.address, body="I want to kill myself."), to=practice.address)
    assert code == 451
    assert "Error" not in text


def test_a_locked_database_delays_the_entry_but_loses_nothing(running, settings, engine, practice):
    # Taking mail needs only the spool: a long write lock on the database (a backup, a migration)
    # holds up screening and storing, not the senders.
    blocker = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with __import__("smtplib").SMTP(settings.listen_host, settings.listen_port) as client:
            client.sendmail("client@mail.test", [practice.address],
                            make_message(to=practice.address, message_id="<during-lock@mail.test>"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    processed(settings)
    assert [e.message_id for e in entries(engine)] == ["during-lock@mail.test"]


def test_two_recipients_store_one_entry_each(running, settings, engine, practice):
    from tests.conftest import register

    other = register(engine, settings, name="Client Two")
    with __import__("smtplib").SMTP(settings.listen_host, settings.listen_port) as client:
        client.sendmail("client@mail.test", [practice.address, other.address], make_message(to=practice.address))
    processed(settings)
    assert {e.client_id for e in entries(engine)} == {practice.client_id, other.client_id}


def test_failed_sender_authentication_is_quarantined(settings, engine, practice):

    front = settings.model_copy(update={"auth_mode": "front-mta", "auth_trusted_host": "mx.journal.test"})
    run = service.start(front)
    try:
        forged = make_message(to=practice.address, headers={
            "Authentication-Results": "mx.journal.test; dmarc=fail header.from=mail.test; spf=fail"})
        genuine = make_message(to=practice.address, headers={
            "Authentication-Results": "mx.journal.test; dmarc=pass header.from=mail.test"})
        assert send(front, forged, to=practice.address)[0] == 250
        assert send(front, genuine, to=practice.address)[0] == 250
    finally:
        run.stop()
    forged_entry, genuine_entry = entries(engine)
    assert forged_entry.status == "quarantined" and "authentication fail" in forged_entry.quarantine_reason
    assert genuine_entry.status == "accepted"


def test_a_processing_crash_parks_the_message_and_release_restores_it(settings, engine, practice, catcher,
                                                                      monkeypatch):
    from journal_relay import intake

    good = intake.build(settings)

    def bug(raw: bytes) -> None:
        raise RuntimeError("a stand-in for any bug of ours")

    raw = make_message(to=practice.address, body="I want to kill myself.")
    now = datetime.now(UTC)
    with monkeypatch.context() as patch:
        patch.setattr(intake, "parse_message", bug)
        assert ingest(engine, settings, raw, to=practice.address, now=now, pipeline=good) == 1
    (parked,) = entries(engine)
    assert parked.status == "quarantined" and "could not be processed" in parked.quarantine_reason
    assert parked.raw == raw
    with db.transaction(engine) as session:
        released = intake.release(session=session, entry_id=parked.id, intake=good, now=parked.received_at)
        assert released.status == "accepted" and "kill myself" in released.text
        assert released.top_severity == "urgent"


def test_a_looping_message_is_refused_with_554(running, settings, engine, practice):
    hops = "".join(f"Received: from hop{i}.test by hop{i + 1}.test; Mon, 30 Nov 2026 10:00:00 +0000\r\n" for i in range(40))
    raw = hops.encode() + make_message(to=practice.address)
    code, text = send(settings, raw, to=practice.address)
    assert code == 554 and text.startswith("5.4.6")
    assert entries(engine) == []




PLAIN_ARGS = ["<a@b.example>", "<a@b.example> SIZE=2048", "<a@b.example>\t BODY=8BITMIME SIZE=3 ",
              "<first.last+tag@mail.example.org>", "<o'neil@x.ie>", "<A@B.EXAMPLE>x"]
NOT_PLAIN = ["<>", " <a@b.example>", "<a..b@c.example>", "<.a@b.example>", "<a@[192.0.2.1]>",
             "<a@b.example> (comment) SIZE=1", '<"quoted local"@b.example>', "<zoë@b.example>", "a@b.example",
             "<a@-b.example>"]


def test_plain_addresses_read_as_aiosmtpd_reads_them() -> None:
    # The receiver's fast path for MAIL and RCPT must never change an answer: what it reads, aiosmtpd's
    # own parser reads the same; everything else is left to aiosmtpd.
    from aiosmtpd.smtp import SMTP
    from hypothesis import given
    from hypothesis import strategies as st

    from journal_relay.receive import plain_address

    parser = SMTP.__new__(SMTP)  # only its address reading, which needs no server
    parser.local_part_limit = 0
    for arg in PLAIN_ARGS:
        assert plain_address(arg) == SMTP._getaddr(parser, arg), arg
    for arg in NOT_PLAIN:
        assert plain_address(arg) is None, arg

    atom = st.text("abcXYZ019!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=8)
    label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
    rest = st.sampled_from(["", " SIZE=10", "  BODY=8BITMIME", "\tSMTPUTF8", " X=1 "])

    @given(st.lists(atom, min_size=1, max_size=3), st.lists(label, min_size=1, max_size=3), rest)
    def same(local: list[str], domain: list[str], params: str) -> None:
        arg = f"<{'.'.join(local)}@{'.'.join(domain)}>{params}"
        assert plain_address(arg) == SMTP._getaddr(parser, arg)

    same()
