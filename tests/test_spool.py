"""The spool between the receiver and the back process: what got 250 is processed once, whatever fails."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from journal_relay import db, intake, service, spool
from journal_relay.models import Entry, Inbound
from journal_relay.runner import GIVE_UP_AFTER_ATTEMPTS, REMOVE_AFTER_SECONDS, Runner
from journal_relay.screen import LexiconError
from tests.conftest import ingest, make_message, processed, runner_for, send, spool_message

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RISK = "I want to kill myself tonight."


def entries(engine):  # type: ignore[no-untyped-def]
    with db.reading(engine) as session:
        return session.exec(select(Entry).order_by(Entry.id)).all()


def spooled(settings):  # type: ignore[no-untyped-def]
    engine = db.make_engine(settings.spool_database_url)
    with db.reading(engine) as session:
        found = session.exec(select(Inbound)).all()
    engine.dispose()
    return found


def drop_flag_table(settings) -> None:  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
    conn.execute("DROP TABLE flag")
    conn.commit()
    conn.close()


def test_a_message_that_cannot_be_stored_stays_spooled_and_is_retried(settings, engine, practice):
    drop_flag_table(settings)
    assert ingest(engine, settings, make_message(to=practice.address, body=RISK), to=practice.address, now=NOW) == 0
    (waiting,) = spooled(settings)
    assert waiting.attempts == 1 and waiting.next_attempt_at > NOW
    assert entries(engine) == []

    db.create_schema(engine)  # the fault is repaired
    runner = runner_for(settings)
    assert runner.run_once(now=NOW) == 0  # not due yet: backing off
    assert runner.run_once(now=NOW + timedelta(minutes=1)) == 1
    runner.remove_stored()
    (entry,) = entries(engine)
    assert entry.status == "accepted" and entry.top_severity == "urgent" and entry.received_at == NOW
    assert spooled(settings) == []


def test_a_message_that_fails_again_and_again_is_kept_for_staff(settings, engine, practice):
    drop_flag_table(settings)
    raw = make_message(to=practice.address, body=RISK)
    ingest(engine, settings, raw, to=practice.address, now=NOW)
    runner = runner_for(settings)
    later = NOW
    for _ in range(GIVE_UP_AFTER_ATTEMPTS - 1):
        later += timedelta(hours=2)
        runner.remove_stored()  # an idle pass: postponed messages come round again
        assert runner.run_once(now=later) == 0
    runner.remove_stored()
    assert runner.run_once(now=later + timedelta(hours=2)) == 1
    runner.remove_stored()
    (entry,) = entries(engine)
    assert entry.status == "quarantined" and "could not be processed" in entry.quarantine_reason
    assert entry.raw == raw
    assert spooled(settings) == []


def test_a_message_processed_twice_is_stored_once(settings, engine, practice, catcher):
    # The back process died after committing the entries and before removing the message from the spool.
    spool_message(settings, make_message(to=practice.address, body=RISK), to=practice.address, now=NOW)
    pipeline = intake.build(settings)
    spool_engine = db.make_engine(settings.spool_database_url)
    with db.reading(spool_engine) as session:
        (item,) = spool.due(session=session, now=NOW, limit=10)
    for _ in range(2):
        with db.transaction(engine) as session:
            outcome = intake.process(item, intake=pipeline)(session, NOW)
    assert outcome.duplicates == 1 and outcome.queued == ()
    assert len(entries(engine)) == 1
    runner = runner_for(settings)
    assert runner.run_once(now=NOW) == 1  # the spool copy, processed again: still one entry
    runner.remove_stored()
    assert len(entries(engine)) == 1 and spooled(settings) == []


def test_stored_messages_leave_the_spool_in_bulk_and_are_not_read_twice(settings, engine, practice):
    clock = [0.0]
    runner = Runner(engine=engine, spool_engine=db.make_engine(settings.spool_database_url),
                    pipeline=intake.build(settings), on_queued=lambda: None, batch=2, monotonic=lambda: clock[0])
    for i in range(3):
        spool_message(settings, make_message(to=practice.address, message_id=f"<bulk-{i}@mail.test>"),
                      to=practice.address, now=NOW)
    assert runner.run_once(now=NOW) == 2
    assert runner.run_once(now=NOW) == 1  # the next one, not the two already stored
    assert len(spooled(settings)) == 3  # still there: removed in bulk
    clock[0] += REMOVE_AFTER_SECONDS
    spool_message(settings, make_message(to=practice.address, message_id="<bulk-3@mail.test>"),
                  to=practice.address, now=NOW)
    assert runner.run_once(now=NOW) == 1
    assert len(spooled(settings)) == 0
    assert len(entries(engine)) == 4


def test_mail_spooled_while_the_back_process_was_down_is_processed_at_start(settings, engine, practice, catcher):
    spool_message(settings, make_message(to=practice.address), to=practice.address, now=datetime.now(UTC))
    run = service.start(settings)
    try:
        processed(settings)
        assert len(entries(engine)) == 1
        assert catcher.wait_for("receipt")
    finally:
        run.stop()


def test_a_crashed_back_process_is_restarted_and_nothing_is_lost(running, settings, engine, practice):
    old = running.back.pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    code, _ = send(settings, make_message(to=practice.address, message_id="<after-crash@mail.test>"),
                   to=practice.address)
    assert code == 250
    assert running.back.pid != old
    assert [e.message_id for e in entries(engine)] == ["after-crash@mail.test"]


def test_stopping_the_service_finishes_the_spool(settings, engine, practice):
    run = service.start(settings)
    with __import__("smtplib").SMTP(settings.listen_host, settings.listen_port) as client:
        for i in range(20):
            client.sendmail("client@mail.test", [practice.address],
                            make_message(to=practice.address, message_id=f"<stop-{i}@mail.test>"))
    run.stop()
    assert spooled(settings) == []
    assert len(entries(engine)) == 20


def test_the_spool_is_a_file_of_its_own_beside_a_sqlite_database(settings):
    assert settings.spool_database_url == settings.database_url.removesuffix(".db") + "-spool.db"
    postgres = settings.model_copy(update={"database_url": "postgresql+psycopg://u@db/journal"})
    assert postgres.spool_database_url == postgres.database_url


def test_a_write_ahead_log_that_never_caught_up_is_started_again(settings):
    # A steady flood leaves SQLite no moment to start the spool's log from its beginning; the back
    # process forces it past a size, so the log and the index every connection maps stay bounded.
    receiver = db.make_engine(settings.spool_database_url, checkpoints=False)
    back = db.make_engine(settings.spool_database_url)
    spool.create(receiver)
    writer = spool.SpoolWriter(receiver)
    taken = spool.Taken(raw=b"Subject: x\r\n\r\n" + b"x" * 3000, client_ids=(1,), envelope_from="", peer="",
                        helo="", received_at=NOW)
    try:
        for _ in range(200):
            writer.submit(taken).result()
        assert not spool.restart_log(back, max_bytes=10_000_000)  # small enough: left alone
        assert spool.restart_log(back, max_bytes=100_000)
        writer.submit(taken).result()
    finally:
        writer.close()
    with sqlite3.connect(settings.spool_database_url.removeprefix("sqlite:///")) as conn:
        _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert frames < 10  # the commit after the restart wrote at the log's beginning
    with db.reading(back) as session:
        assert spool.size(session=session) == 201


def test_a_broken_practice_lexicon_stops_start_up_and_the_back_process(settings, tmp_path):
    # The back process starts building beside the receiver's own check of the settings; when the check
    # fails, start-up stops with the lexicon's message and leaves no back process behind.
    broken = tmp_path / "practice.toml"
    broken.write_text('[[rule]]\nid = "practice.x"\ncategory = "nonsense"\n', encoding="utf-8")
    with pytest.raises(LexiconError):
        service.start(settings.model_copy(update={"lexicon": broken}))
    assert multiprocessing.active_children() == []
