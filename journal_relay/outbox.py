"""The outbox: the only writer of outbound email rows, and the queries the deliverer uses to drain it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from journal_relay.models import Outbound


@dataclass(frozen=True)
class Email:
    """A composed outbound email, ready to queue."""

    kind: str  # alert | digest | receipt
    dedupe_key: str
    recipient: str
    sender: str
    message_id: str
    raw: bytes


def enqueue(*, session: Session, email: Email, now: datetime) -> Outbound:
    """Queue `email` unless one with the same dedupe key was queued before; return the row either way."""
    existing = session.exec(select(Outbound).where(Outbound.dedupe_key == email.dedupe_key)).first()
    if existing is not None:
        return existing
    row = Outbound(
        dedupe_key=email.dedupe_key,
        kind=email.kind,
        recipient=email.recipient,
        sender=email.sender,
        message_id=email.message_id,
        raw=email.raw,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def due(*, session: Session, now: datetime, limit: int = 50) -> Sequence[Outbound]:
    return session.exec(
        select(Outbound)
        .where(Outbound.status == "pending", col(Outbound.next_attempt_at) <= now)
        .order_by(col(Outbound.next_attempt_at), col(Outbound.id))
        .limit(limit)
    ).all()


def next_due_at(*, session: Session) -> datetime | None:
    row = session.exec(
        select(Outbound).where(Outbound.status == "pending").order_by(col(Outbound.next_attempt_at)).limit(1)
    ).first()
    return row.next_attempt_at if row else None


def mark_sent(*, session: Session, outbound_id: int, now: datetime) -> None:
    row = session.get(Outbound, outbound_id)
    if row is not None and row.status != "sent":
        row.status = "sent"
        row.sent_at = now
        row.attempts += 1
        row.last_error = ""
        session.add(row)


def backoff(attempts: int, *, cap_seconds: float) -> timedelta:
    """30 s, 1 min, 2 min, 4 min ... up to the cap: quick while a relay blips, gentle while it is down."""
    return timedelta(seconds=min(cap_seconds, 30.0 * 2 ** max(0, attempts - 1)))


def mark_failed(*, session: Session, outbound_id: int, error: str, now: datetime, cap_seconds: float) -> None:
    row = session.get(Outbound, outbound_id)
    if row is not None and row.status != "sent":
        row.attempts += 1
        row.last_error = error[:200]
        row.next_attempt_at = now + backoff(row.attempts, cap_seconds=cap_seconds)
        session.add(row)


def retry_now(*, session: Session, now: datetime) -> int:
    """Make every pending row due at once (after a relay outage is fixed)."""
    rows = session.exec(select(Outbound).where(Outbound.status == "pending")).all()
    for row in rows:
        row.next_attempt_at = now
        session.add(row)
    return len(rows)


def list_rows(*, session: Session, pending_only: bool = False) -> Sequence[Outbound]:
    query = select(Outbound).order_by(col(Outbound.id))
    if pending_only:
        query = query.where(Outbound.status == "pending")
    return session.exec(query).all()
