"""RCPT remembers known private addresses for a while; it never remembers an unknown one."""

from __future__ import annotations

from sqlmodel import select

from journal_relay import db
from journal_relay.models import Client, Entry
from journal_relay.receive import KnownAddresses
from tests.conftest import make_message, send


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_known_address_is_remembered_until_it_expires():
    clock = Clock()
    known = KnownAddresses(ttl_seconds=60, clock=clock)
    known.add("Tok@Journal.Test", 1)
    assert "tok@journal.test" in known
    clock.now += 61
    assert "tok@journal.test" not in known


def test_zero_seconds_remembers_nothing():
    known = KnownAddresses(ttl_seconds=0)
    known.add("tok@journal.test", 1)
    assert "tok@journal.test" not in known


def test_memory_stays_bounded():
    known = KnownAddresses(ttl_seconds=60, max_size=3)
    for n in range(10):
        known.add(f"tok{n}@journal.test", n)
    assert len(known._until) <= 3


def test_mail_taken_for_a_client_deactivated_while_remembered_is_kept_for_staff(running, settings, engine, practice):
    assert send(settings, make_message(to=practice.address), to=practice.address)[0] == 250
    with db.transaction(engine) as session:
        client = session.get(Client, practice.client_id)
        assert client is not None
        client.active = False
        session.add(client)
    code, _ = send(settings, make_message(to=practice.address, message_id="<late@mail.test>"), to=practice.address)
    assert code == 250  # RCPT still remembered the address
    with db.reading(engine) as session:
        late = session.exec(select(Entry).where(Entry.message_id == "late@mail.test")).one()
    assert late.status == "quarantined" and "deactivated" in late.quarantine_reason
