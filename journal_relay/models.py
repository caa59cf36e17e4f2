"""Tables: every stored thing, typed, with timezone-aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, LargeBinary, Text, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always gives them back aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Therapist(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    email: str = Field(unique=True, index=True)
    timezone: str = "Europe/London"
    digest_lead_minutes: int = 120
    created_at: datetime = Field(sa_column=utc_column())


class Client(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    therapist_id: int = Field(foreign_key="therapist.id", index=True)
    name: str
    # The local part of the private address: unguessable, the only key from outside.
    token: str = Field(unique=True, index=True)
    active: bool = True
    created_at: datetime = Field(sa_column=utc_column())


class Sender(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("client_id", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    address: str = Field(index=True)  # lower-cased addr-spec


class Appointment(SQLModel, table=True):
    """A therapy session (called 'session' on the command line; 'Session' is the database's word)."""

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    starts_at: datetime = Field(sa_column=utc_column(index=True))
    digest_due_at: datetime = Field(sa_column=utc_column(index=True))
    # pending -> sent (a Digest row exists) or missed (the session began before we could send it).
    digest_status: str = Field(default="pending", index=True)


class Digest(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # Unique: the database itself refuses a second digest for one session.
    appointment_id: int = Field(foreign_key="appointment.id", unique=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    created_at: datetime = Field(sa_column=utc_column())
    entry_count: int = 0


class Entry(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("client_id", "message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    therapist_id: int = Field(foreign_key="therapist.id", index=True)
    message_id: str = Field(max_length=998)
    received_at: datetime = Field(sa_column=utc_column(index=True))
    envelope_from: str = ""
    from_address: str = ""
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    attachments_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    # accepted: the client's writing. quarantined: kept for staff, never shown as the client's writing.
    status: str = Field(default="accepted", index=True)
    quarantine_reason: str = ""
    top_severity: str | None = None
    digest_id: int | None = Field(default=None, foreign_key="digest.id", index=True)


class Inbound(SQLModel, table=True):
    """A message as received: committed before the sender hears 250, removed in the transaction that turns it
    into entries (see runner.py). What is here has been promised to the sender and not yet processed."""

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(sa_column=utc_column())
    client_ids: str  # ","-joined: the private addresses accepted at RCPT, resolved when the message was taken
    envelope_from: str = ""
    peer: str = ""
    helo: str = ""
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # Processing failures so far (a storage outage, a bug): retried later, never dropped.
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=utc_column(index=True))


class Flag(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="entry.id", index=True)
    category: str
    severity: str
    rule: str
    match: str = Field(sa_column=Column(Text, nullable=False))
    sentence: str = Field(sa_column=Column(Text, nullable=False))
    context: str = ""  # "; "-joined notes such as "negation: not"
    counted: bool = True  # False: a discounted finding, kept as a note
    acknowledged_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    acknowledged_by: str = ""


class Outbound(SQLModel, table=True):
    """One outbound email. Written before it is sent; the deliverer is its only reader."""

    id: int | None = Field(default=None, primary_key=True)
    # e.g. "digest:appointment:7", "alert:entry:12": the same email can never be queued twice.
    dedupe_key: str = Field(unique=True)
    kind: str = Field(index=True)  # alert | digest | receipt
    recipient: str
    sender: str
    message_id: str
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default="pending", index=True)  # pending | sent
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=utc_column(index=True))
    last_error: str = ""  # SMTP code and class of failure only, never content
    created_at: datetime = Field(sa_column=utc_column())
    sent_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
