"""Queries that read and write therapists, clients, sessions, entries and flags (keyword-only, given a session)."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, insert
from sqlmodel import Session, SQLModel, col, select

from journal_relay import db
from journal_relay.models import Appointment, Client, Digest, Entry, Flag, Sender, Therapist
from journal_relay.parse import ParsedMessage
from journal_relay.screen import Screening

T = TypeVar("T")


class NotFound(LookupError):
    """Something named on the command line or in an address does not exist."""


class Conflict(ValueError):
    """The change would break a rule of the data (a duplicate, a bad value)."""


def new_token() -> str:
    # 80 random bits in lower-case base32: unguessable, and safe where mail systems fold case.
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def normalise_address(address: str) -> str:
    return address.strip().strip("<>").lower()


def _remembered(session: Session, key: Hashable, look_up: Callable[[], T]) -> T:
    """`look_up()`, remembered for the rest of a batch (see db.batch_memo); elsewhere always asked."""
    memo = db.batch_memo(session)
    if memo is None:
        return look_up()
    if key not in memo:
        memo[key] = look_up()
    found: T = memo[key]
    return found


def _row(model: SQLModel) -> dict[str, Any]:
    """The column values of a new model object (defaults applied), for a Core insert."""
    return {column.name: getattr(model, column.name) for column in model.__table__.columns  # type: ignore[attr-defined]
            if column.name != "id"}


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Conflict(f"unknown time zone {name!r}; use an IANA name such as Europe/London") from None
    return name


# --- therapists -------------------------------------------------------------------------------


def add_therapist(
    *, session: Session, name: str, email: str, timezone: str, digest_lead_minutes: int, now: datetime
) -> Therapist:
    email = normalise_address(email)
    if "@" not in email:
        raise Conflict(f"{email!r} is not an email address")
    if session.exec(select(Therapist).where(Therapist.email == email)).first() is not None:
        raise Conflict(f"a therapist with email {email} already exists")
    if digest_lead_minutes < 0:
        raise Conflict("the digest lead time cannot be negative")
    therapist = Therapist(
        name=name.strip(),
        email=email,
        timezone=check_timezone(timezone),
        digest_lead_minutes=digest_lead_minutes,
        created_at=now,
    )
    session.add(therapist)
    session.flush()
    return therapist


def therapist_by_email(*, session: Session, email: str) -> Therapist:
    therapist = session.exec(select(Therapist).where(Therapist.email == normalise_address(email))).first()
    if therapist is None:
        raise NotFound(f"no therapist with email {email}; see 'journal-relay therapist list'")
    return therapist


def list_therapists(*, session: Session) -> Sequence[Therapist]:
    return session.exec(select(Therapist).order_by(col(Therapist.id))).all()


# --- clients ----------------------------------------------------------------------------------


def add_client(
    *, session: Session, therapist_email: str, name: str, senders: Sequence[str], now: datetime
) -> Client:
    therapist = therapist_by_email(session=session, email=therapist_email)
    addresses = sorted({normalise_address(s) for s in senders})
    if not addresses:
        raise Conflict("a client needs at least one --sender address they write from")
    for address in addresses:
        if "@" not in address or " " in address:
            raise Conflict(f"{address!r} is not an email address")
    assert therapist.id is not None
    client = Client(therapist_id=therapist.id, name=name.strip(), token=new_token(), created_at=now)
    session.add(client)
    session.flush()
    assert client.id is not None
    for address in addresses:
        session.add(Sender(client_id=client.id, address=address))
    session.flush()
    return client


def client_by_token(*, session: Session, token: str) -> Client | None:
    query = select(Client).where(Client.token == token.lower(), col(Client.active).is_(True))
    return session.exec(query).first()


def client_by_address(*, session: Session, address: str, domain: str) -> Client:
    local, _, host = normalise_address(address).rpartition("@")
    client = (
        _remembered(session, ("client", local), lambda: client_by_token(session=session, token=local))
        if host == domain else None
    )
    if client is None:
        raise NotFound(f"{address} is not a client's private address; see 'journal-relay client list'")
    return client


def senders_of(*, session: Session, client_id: int) -> set[str]:
    return _remembered(
        session, ("senders", client_id),
        lambda: set(session.exec(select(Sender.address).where(Sender.client_id == client_id)).all()),
    )


def therapist_of(*, session: Session, client: Client) -> Therapist:
    # Remembered, not only left to the identity map: that map holds objects weakly, so between two
    # messages of a batch the therapist would be dropped and fetched again.
    therapist = _remembered(session, ("therapist", client.therapist_id),
                            lambda: session.get(Therapist, client.therapist_id))
    assert therapist is not None
    return therapist


def list_clients(*, session: Session, therapist_email: str | None = None) -> Sequence[tuple[Client, Therapist]]:
    query = select(Client, Therapist).where(Client.therapist_id == Therapist.id).order_by(col(Client.id))
    if therapist_email is not None:
        query = query.where(Therapist.id == therapist_by_email(session=session, email=therapist_email).id)
    return session.exec(query).all()


# --- sessions (appointments) ------------------------------------------------------------------


def add_appointments(
    *, session: Session, client: Client, starts: Sequence[datetime], now: datetime
) -> list[Appointment]:
    therapist = therapist_of(session=session, client=client)
    lead = timedelta(minutes=therapist.digest_lead_minutes)
    made = []
    for start in starts:
        if start <= now:
            raise Conflict(f"the session at {start.isoformat()} is in the past; give a future time")
        assert client.id is not None
        appointment = Appointment(client_id=client.id, starts_at=start, digest_due_at=start - lead)
        session.add(appointment)
        made.append(appointment)
    session.flush()
    return made


def list_appointments(
    *, session: Session, client: Client | None = None, upcoming_after: datetime | None = None
) -> Sequence[tuple[Appointment, Client]]:
    query = select(Appointment, Client).where(Appointment.client_id == Client.id).order_by(col(Appointment.starts_at))
    if client is not None:
        query = query.where(Appointment.client_id == client.id)
    if upcoming_after is not None:
        query = query.where(col(Appointment.starts_at) > upcoming_after)
    return session.exec(query).all()


def next_appointment(*, session: Session, client_id: int, now: datetime) -> Appointment | None:
    return session.exec(
        select(Appointment)
        .where(Appointment.client_id == client_id, col(Appointment.starts_at) > now)
        .order_by(col(Appointment.starts_at))
    ).first()


def due_appointments(*, session: Session, now: datetime) -> Sequence[Appointment]:
    return session.exec(
        select(Appointment)
        .where(Appointment.digest_status == "pending", col(Appointment.digest_due_at) <= now)
        .order_by(col(Appointment.starts_at))
    ).all()


# --- entries and flags ------------------------------------------------------------------------


# Built once: record_entry runs for every message, and building a statement costs more than running it.
_ENTRY_ID_BY_MESSAGE_ID = select(Entry.id).where(
    Entry.client_id == bindparam("client_id"), Entry.message_id == bindparam("message_id")
)
_ANY_ACCEPTED_ENTRY = select(Entry.id).where(
    Entry.client_id == bindparam("client_id"), Entry.status == "accepted"
).limit(1)
_INSERT_ENTRY = insert(Entry)
_INSERT_FLAGS = insert(Flag)


@dataclass(frozen=True)
class Recorded:
    entry: Entry
    new: bool  # False when this Message-ID was already stored for the client
    first: bool  # the client's first accepted entry


def record_entry(
    *,
    session: Session,
    client: Client,
    parsed: ParsedMessage,
    screening: Screening | None,
    raw: bytes,
    envelope_from: str,
    quarantine_reason: str,
    now: datetime,
) -> Recorded:
    """Store the entry and its findings, once per client and Message-ID.

    Inserted with Core statements, not the ORM unit of work: this runs for every message received, and
    the ORM's flush cost several times the insert itself. The returned entry is not attached to the
    session; it carries its id and every value stored.
    """
    assert client.id is not None
    message_id = parsed.message_id[:998]
    existing_id = session.connection().execute(
        _ENTRY_ID_BY_MESSAGE_ID, {"client_id": client.id, "message_id": message_id}
    ).scalar()
    if existing_id is not None:
        existing = session.get(Entry, existing_id)
        assert existing is not None
        return Recorded(entry=existing, new=False, first=False)
    first = not quarantine_reason and not _has_accepted_entry(session, client.id)
    entry = Entry(
        client_id=client.id,
        therapist_id=client.therapist_id,
        message_id=message_id,
        received_at=now,
        envelope_from=envelope_from,
        from_address=parsed.from_addresses[0] if parsed.from_addresses else "",
        subject=parsed.subject,
        text=parsed.text,
        raw=raw,
        attachments_json=json.dumps(
            [{"filename": a.filename, "content_type": a.content_type, "size": a.size} for a in parsed.attachments]
        ),
        status="quarantined" if quarantine_reason else "accepted",
        quarantine_reason=quarantine_reason,
        top_severity=screening.top_severity if screening else None,
    )
    key = session.connection().execute(_INSERT_ENTRY, _row(entry)).inserted_primary_key
    assert key is not None
    entry.id = key[0]
    assert entry.id is not None
    if screening is not None:
        _add_findings(session, entry.id, screening)
    return Recorded(entry=entry, new=True, first=first)


def _has_accepted_entry(session: Session, client_id: int) -> bool:
    """Any accepted entry yet? Stops at the first one (counting read every row, raw bytes included).

    Only a yes is remembered for the batch: entries are never deleted or un-accepted, so it stays true,
    while a no turns into a yes as soon as this batch stores one.
    """
    memo = db.batch_memo(session)
    key = ("has_accepted", client_id)
    if memo is not None and memo.get(key):
        return True
    found = session.connection().execute(_ANY_ACCEPTED_ENTRY, {"client_id": client_id}).first() is not None
    if memo is not None and found:
        memo[key] = True
    return found


def _add_findings(session: Session, entry_id: int, screening: Screening) -> None:
    rows = [
        _row(Flag(
            entry_id=entry_id,
            category=finding.category,
            severity=finding.severity,
            rule=finding.rule,
            match=finding.match,
            sentence=finding.sentence,
            context="; ".join(finding.context),
            counted=counted,
        ))
        for finding, counted in [(f, True) for f in screening.flags] + [(f, False) for f in screening.discounted]
    ]
    if rows:
        session.flush()  # any pending ORM changes (release_entry's deletes) go first, in order
        session.connection().execute(_INSERT_FLAGS, rows)


def undigested_entries(*, session: Session, client_id: int, until: datetime) -> Sequence[Entry]:
    return session.exec(
        select(Entry)
        .where(
            Entry.client_id == client_id,
            Entry.status == "accepted",
            col(Entry.digest_id).is_(None),
            col(Entry.received_at) <= until,
        )
        .order_by(col(Entry.received_at), col(Entry.id))
    ).all()


def earlier_entries(*, session: Session, client_id: int, before: datetime, limit: int) -> Sequence[Entry]:
    """The client's already-digested entries, newest first: the background for what recurs."""
    return session.exec(
        select(Entry)
        .where(
            Entry.client_id == client_id,
            Entry.status == "accepted",
            col(Entry.digest_id).is_not(None),
            col(Entry.received_at) < before,
        )
        .order_by(col(Entry.received_at).desc())
        .limit(limit)
    ).all()


def flags_of(*, session: Session, entry_ids: Sequence[int]) -> dict[int, list[Flag]]:
    found: dict[int, list[Flag]] = {entry_id: [] for entry_id in entry_ids}
    if entry_ids:
        for flag in session.exec(select(Flag).where(col(Flag.entry_id).in_(entry_ids)).order_by(col(Flag.id))):
            found[flag.entry_id].append(flag)
    return found


def mark_digested(
    *, session: Session, appointment: Appointment, entries: Sequence[Entry], now: datetime
) -> Digest:
    assert appointment.id is not None
    digest = Digest(
        appointment_id=appointment.id, client_id=appointment.client_id, created_at=now, entry_count=len(entries)
    )
    session.add(digest)
    session.flush()
    for entry in entries:
        entry.digest_id = digest.id
        session.add(entry)
    appointment.digest_status = "sent"
    session.add(appointment)
    session.flush()
    return digest


def mark_missed(*, session: Session, appointment: Appointment) -> None:
    appointment.digest_status = "missed"
    session.add(appointment)
    session.flush()


def list_flags(
    *, session: Session, therapist_email: str | None = None, include_acknowledged: bool = False
) -> Sequence[tuple[Flag, Entry, Client]]:
    query = (
        select(Flag, Entry, Client)
        .where(Flag.entry_id == Entry.id, Entry.client_id == Client.id, Flag.counted == True)  # noqa: E712
        .order_by(col(Flag.id))
    )
    if therapist_email is not None:
        query = query.where(Entry.therapist_id == therapist_by_email(session=session, email=therapist_email).id)
    if not include_acknowledged:
        query = query.where(col(Flag.acknowledged_at).is_(None))
    return session.exec(query).all()


def acknowledge_flag(*, session: Session, flag_id: int, by: str, now: datetime) -> Flag:
    flag = session.get(Flag, flag_id)
    if flag is None or not flag.counted:
        raise NotFound(f"no flag with id {flag_id}; see 'journal-relay flags list'")
    if flag.acknowledged_at is None:
        flag.acknowledged_at = now
        flag.acknowledged_by = by
        session.add(flag)
        session.flush()
    return flag


def list_quarantine(*, session: Session) -> Sequence[tuple[Entry, Client]]:
    return session.exec(
        select(Entry, Client)
        .where(Entry.client_id == Client.id, Entry.status == "quarantined")
        .order_by(col(Entry.id))
    ).all()


def quarantined_entry(*, session: Session, entry_id: int) -> Entry:
    entry = session.get(Entry, entry_id)
    if entry is None or entry.status != "quarantined":
        raise NotFound(f"no quarantined entry with id {entry_id}; see 'journal-relay quarantine list'")
    return entry


def release_entry(*, session: Session, entry: Entry, text: str, screening: Screening) -> Entry:
    """Accept a quarantined entry as the client's writing, with its words and findings taken afresh."""
    assert entry.id is not None
    for old in session.exec(select(Flag).where(Flag.entry_id == entry.id)):
        session.delete(old)
    entry.status = "accepted"
    entry.text = text
    entry.top_severity = screening.top_severity
    session.add(entry)
    _add_findings(session, entry.id, screening)
    session.flush()
    return entry


def _getter(session: Session, client_id: int) -> Callable[[], Client | None]:
    return lambda: session.get(Client, client_id)


def clients_by_id(*, session: Session, client_ids: Sequence[int]) -> list[Client]:
    """The clients a spooled message was accepted for, active or not: it was accepted while they were."""
    found = []
    for client_id in client_ids:
        client = _remembered(session, ("client_id", client_id), _getter(session, client_id))
        if client is None:
            raise NotFound(f"client {client_id} no longer exists")
        found.append(client)
    return found
