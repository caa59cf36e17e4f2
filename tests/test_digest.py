"""Digests: due at session start minus the lead, exactly once, oldest first, flags marked, HTML escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from journal_relay import db, digest, store
from journal_relay.deliver import Deliverer, SMTPTransport
from journal_relay.models import Appointment, Outbound
from journal_relay.render import Renderer
from tests.conftest import CLIENT_SENDER, THERAPIST, ingest, make_message, register

SESSION = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
DUE = SESSION - timedelta(hours=2)


def take_in(settings, engine, practice, body, *, at, sender=CLIENT_SENDER):  # type: ignore[no-untyped-def]
    raw = make_message(to=practice.address, body=body, sender=sender)
    assert ingest(engine, settings, raw, to=practice.address, now=at, mail_from=sender) == 1


def digests(engine):  # type: ignore[no-untyped-def]
    with db.reading(engine) as session:
        return [r for r in session.exec(select(Outbound).order_by(Outbound.id)) if r.kind == "digest"]


def run_due(settings, engine, now):  # type: ignore[no-untyped-def]
    return digest.send_due(engine=engine, settings=settings, renderer=Renderer(), now=now)


def digest_text(row):  # type: ignore[no-untyped-def]
    from email import message_from_bytes, policy

    return message_from_bytes(row.raw, policy=policy.default).get_body(("plain",)).get_content()


def test_not_due_before_the_lead_time(settings, engine, practice):
    practice.add_session(SESSION)
    assert run_due(settings, engine, DUE - timedelta(minutes=1)) == []


def test_sent_exactly_once_with_entries_oldest_first(settings, engine, practice):
    practice.add_session(SESSION)
    take_in(settings, engine, practice, "First thing on my mind.", at=DUE - timedelta(days=2))
    take_in(settings, engine, practice, "Second thing on my mind.", at=DUE - timedelta(days=1))
    assert len(run_due(settings, engine, DUE)) == 1
    assert run_due(settings, engine, DUE + timedelta(minutes=1)) == []
    (row,) = digests(engine)
    text = digest_text(row)
    assert row.recipient == THERAPIST
    assert text.index("First thing") < text.index("Second thing")
    assert "2 new entries" in text


def test_next_digest_holds_only_newer_entries(settings, engine, practice):
    practice.add_session(SESSION)
    practice.add_session(SESSION + timedelta(weeks=1))
    take_in(settings, engine, practice, "Before the first session.", at=DUE - timedelta(days=1))
    run_due(settings, engine, DUE)
    take_in(settings, engine, practice, "Before the second session.", at=DUE + timedelta(days=3))
    run_due(settings, engine, DUE + timedelta(weeks=1))
    first, second = (digest_text(r) for r in digests(engine))
    assert "Before the first" in first and "Before the second" not in first
    assert "Before the second" in second and "Before the first" not in second


def test_empty_digest_says_so(settings, engine, practice):
    practice.add_session(SESSION)
    run_due(settings, engine, DUE)
    assert "No new entries" in digest_text(digests(engine)[0])


def test_late_start_sends_while_session_not_begun_and_skips_once_begun(settings, engine, practice):
    practice.add_session(SESSION)
    practice.add_session(SESSION + timedelta(weeks=1))
    take_in(settings, engine, practice, "Written while the service was down.", at=DUE - timedelta(days=1))
    assert run_due(settings, engine, SESSION - timedelta(minutes=5)) != []  # back up before the session
    assert len(digests(engine)) == 1


def test_missed_session_rolls_entries_into_the_next_digest(settings, engine, practice):
    missed = practice.add_session(SESSION)
    practice.add_session(SESSION + timedelta(weeks=1))
    take_in(settings, engine, practice, "Kept for later.", at=DUE - timedelta(days=1))
    assert run_due(settings, engine, SESSION + timedelta(hours=1)) == []
    with db.reading(engine) as session:
        assert session.get(Appointment, missed).digest_status == "missed"
    run_due(settings, engine, SESSION + timedelta(weeks=1) - timedelta(hours=2))
    assert "Kept for later." in digest_text(digests(engine)[0])


def test_flagged_entries_come_first_and_are_marked(settings, engine, practice):
    practice.add_session(SESSION)
    take_in(settings, engine, practice, "A calm walk by the river.", at=DUE - timedelta(days=2))
    take_in(settings, engine, practice, "I want to kill myself.", at=DUE - timedelta(days=1))
    run_due(settings, engine, DUE)
    text = digest_text(digests(engine)[0])
    assert text.index("FLAGGED") < text.index("ENTRIES, OLDEST FIRST")
    assert "[FLAGGED: self/" in text


def test_client_text_is_escaped_in_html(settings, engine, practice):
    from email import message_from_bytes, policy

    practice.add_session(SESSION)
    take_in(settings, engine, practice, "<script>alert(1)</script> & <b>bold</b>", at=DUE - timedelta(days=1))
    run_due(settings, engine, DUE)
    html = message_from_bytes(digests(engine)[0].raw, policy=policy.default).get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp;" in html


def test_quarantined_mail_never_reaches_the_digest(settings, engine, practice):
    practice.add_session(SESSION)
    take_in(settings, engine, practice, "Not from the client.", at=DUE - timedelta(days=1), sender="x@evil.test")
    run_due(settings, engine, DUE)
    assert "Not from the client." not in digest_text(digests(engine)[0])


def test_a_therapist_only_sees_their_own_clients(settings, engine, practice):
    other = register(engine, settings, therapist="bo@practice.test", name="Other Client", sender="o@mail.test")
    practice.add_session(SESSION)
    other.add_session(SESSION)
    take_in(settings, engine, other, "Other client's words.", at=DUE - timedelta(days=1), sender="o@mail.test")
    run_due(settings, engine, DUE)
    mine = next(r for r in digests(engine) if r.recipient == THERAPIST)
    assert "Other client's words." not in digest_text(mine)
    with db.reading(engine) as session:
        assert store.list_flags(session=session, therapist_email=THERAPIST) == []


def test_preview_marks_nothing(settings, engine, practice):
    practice.add_session(SESSION)
    take_in(settings, engine, practice, "Preview me.", at=DUE - timedelta(days=1))
    with db.transaction(engine) as session:
        client = store.client_by_address(session=session, address=practice.address, domain=settings.domain)
        rendered = digest.preview(session=session, settings=settings, renderer=Renderer(), client=client,
                                  now=DUE - timedelta(hours=1))
    assert "Preview me." in rendered.text
    run_due(settings, engine, DUE)
    assert "Preview me." in digest_text(digests(engine)[0])


def test_digest_is_delivered_over_smtp_once(settings, engine, practice, catcher):
    practice.add_session(SESSION)
    run_due(settings, engine, DUE)
    deliverer = Deliverer(engine=engine, transport=SMTPTransport(settings.relay or ""), retry_cap_seconds=60)
    deliverer.run_once(now=DUE)
    deliverer.run_once(now=DUE + timedelta(minutes=10))
    assert len(catcher.of_kind("digest")) == 1


def test_recurring_themes_are_listed(settings, engine, practice):
    practice.add_session(SESSION)
    for day in (3, 2, 1):
        take_in(settings, engine, practice, f"Argued with my sister again, day {day}.", at=DUE - timedelta(days=day))
    run_due(settings, engine, DUE)
    text = digest_text(digests(engine)[0])
    assert "WHAT RECURS" in text and "sister" in text
