"""Notify stage: a stored entry -> the urgent alert and the client receipt it calls for, queued in the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from journal_relay import outbox, store
from journal_relay.compose import compose
from journal_relay.config import Settings
from journal_relay.models import Client, Entry, Therapist
from journal_relay.parse import ParsedMessage
from journal_relay.render import Renderer
from journal_relay.screen import Finding, Screening


@dataclass(frozen=True)
class FlagView:
    category: str
    severity: str
    rule: str
    match: str
    sentence: str
    context: str

    @classmethod
    def of(cls, finding: Finding) -> FlagView:
        return cls(
            category=finding.category,
            severity=finding.severity,
            rule=finding.rule,
            match=finding.match,
            sentence=finding.sentence,
            context="; ".join(finding.context),
        )


def wants_receipt(*, parsed: ParsedMessage, envelope_from: str, settings: Settings) -> bool:
    """RFC 3834: never answer bounces (null sender), lists, or other automatic mail."""
    return settings.receipts and bool(envelope_from.strip("<>")) and not parsed.automatic


def queue_for_entry(
    *,
    session: Session,
    settings: Settings,
    renderer: Renderer,
    client: Client,
    entry: Entry,
    first: bool,
    parsed: ParsedMessage,
    screening: Screening,
    envelope_from: str,
    now: datetime,
) -> list[str]:
    """Queue what `entry` calls for; returns the kinds queued ("alert", "receipt")."""
    therapist = store.therapist_of(session=session, client=client)
    verified = entry.status == "accepted"
    queued = []
    if screening.reaches(settings.alert_severity):
        outbox.enqueue(session=session, email=_alert(settings, renderer, therapist, client, entry, screening,
                                                      verified, now), now=now)
        queued.append("alert")
    if verified and (first or screening.flags) and wants_receipt(
        parsed=parsed, envelope_from=envelope_from, settings=settings
    ):
        outbox.enqueue(session=session, email=_receipt(session, settings, renderer, therapist, client, entry,
                                                        bool(screening.flags), now), now=now)
        queued.append("receipt")
    return queued


def _alert(
    settings: Settings,
    renderer: Renderer,
    therapist: Therapist,
    client: Client,
    entry: Entry,
    screening: Screening,
    verified: bool,
    now: datetime,
) -> outbox.Email:
    view = {
        "therapist": therapist,
        "client": client,
        "entry": entry,
        "verified": verified,
        "flags": [FlagView.of(f) for f in screening.flags],
        "discounted": [FlagView.of(f) for f in screening.discounted],
        "top_severity": screening.top_severity,
        "zone": therapist.timezone,
        "practice_name": settings.practice_name,
    }
    return compose(
        kind="alert",
        dedupe_key=f"alert:entry:{entry.id}",
        rendered=renderer.render("alert", view),
        sender=settings.from_address,
        recipient=therapist.email,
        now=now,
    )


def _receipt(
    session: Session,
    settings: Settings,
    renderer: Renderer,
    therapist: Therapist,
    client: Client,
    entry: Entry,
    flagged: bool,
    now: datetime,
) -> outbox.Email:
    assert client.id is not None
    upcoming = store.next_appointment(session=session, client_id=client.id, now=now)
    view = {
        "therapist": therapist,
        "client": client,
        "entry": entry,
        "flagged": flagged,
        "session_at": upcoming.starts_at if upcoming else None,
        "zone": therapist.timezone,
        "crisis_text": settings.crisis_text,
        "practice_name": settings.practice_name,
    }
    return compose(
        kind="receipt",
        dedupe_key=f"receipt:entry:{entry.id}",
        rendered=renderer.render("receipt", view),
        sender=settings.from_address,
        recipient=entry.from_address,
        now=now,
        auto_submitted="auto-replied",
        in_reply_to=entry.message_id,
    )
