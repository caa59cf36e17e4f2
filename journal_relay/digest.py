"""Digest stage: due sessions -> one digest email per session, queued exactly once."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from journal_relay import db, outbox, store
from journal_relay.compose import compose
from journal_relay.config import Settings
from journal_relay.models import Appointment, Client, Entry, Flag, Therapist
from journal_relay.recur import Theme, recurring
from journal_relay.render import Rendered, Renderer

log = logging.getLogger(__name__)

_BACKGROUND_ENTRIES = 20  # earlier entries consulted for what recurs


@dataclass(frozen=True)
class EntryView:
    id: int
    received_at: datetime
    subject: str
    text: str
    flags: tuple[Flag, ...]  # counted risk flags
    notes: tuple[Flag, ...]  # discounted findings
    attachments: tuple[str, ...]


@dataclass(frozen=True)
class DigestView:
    therapist: Therapist
    client: Client
    session_at: datetime | None
    now: datetime
    zone: str
    entries: tuple[EntryView, ...]  # oldest first
    flagged: tuple[EntryView, ...]  # the flagged ones, shown first
    themes: tuple[Theme, ...]
    practice_name: str


def _entry_views(entries: Sequence[Entry], flags: dict[int, list[Flag]]) -> tuple[EntryView, ...]:
    views = []
    for entry in entries:
        assert entry.id is not None
        attachments = tuple(
            str(a.get("filename") or a.get("content_type")) for a in json.loads(entry.attachments_json or "[]")
        )
        views.append(
            EntryView(
                id=entry.id,
                received_at=entry.received_at,
                subject=entry.subject,
                text=entry.text,
                flags=tuple(f for f in flags[entry.id] if f.counted),
                notes=tuple(f for f in flags[entry.id] if not f.counted),
                attachments=attachments,
            )
        )
    return tuple(views)


def build_view(
    *, session: Session, settings: Settings, client: Client, session_at: datetime | None, now: datetime
) -> tuple[DigestView, Sequence[Entry]]:
    assert client.id is not None
    therapist = store.therapist_of(session=session, client=client)
    entries = store.undigested_entries(session=session, client_id=client.id, until=now)
    flags = store.flags_of(session=session, entry_ids=[e.id for e in entries if e.id is not None])
    views = _entry_views(entries, flags)
    background = store.earlier_entries(session=session, client_id=client.id, before=now, limit=_BACKGROUND_ENTRIES)
    view = DigestView(
        therapist=therapist,
        client=client,
        session_at=session_at,
        now=now,
        zone=therapist.timezone,
        entries=views,
        flagged=tuple(v for v in views if v.flags),
        themes=recurring([e.text for e in entries], background=[e.text for e in background]),
        practice_name=settings.practice_name,
    )
    return view, entries


def render(renderer: Renderer, view: DigestView) -> Rendered:
    return renderer.render("digest", {"d": view})


def preview(*, session: Session, settings: Settings, renderer: Renderer, client: Client, now: datetime) -> Rendered:
    """The digest that would go out next for `client`, without sending or marking anything."""
    assert client.id is not None
    upcoming = store.next_appointment(session=session, client_id=client.id, now=now)
    view, _ = build_view(session=session, settings=settings, client=client,
                         session_at=upcoming.starts_at if upcoming else None, now=now)
    return render(renderer, view)


def _send_one(
    session: Session, appointment: Appointment, *, settings: Settings, renderer: Renderer, now: datetime
) -> int | None:
    client = session.get(Client, appointment.client_id)
    assert client is not None
    if appointment.starts_at <= now:
        # Too late to help: the entries roll into the next session's digest.
        store.mark_missed(session=session, appointment=appointment)
        log.warning("digest for session %s missed: it began before the service could send it", appointment.id)
        return None
    view, entries = build_view(session=session, settings=settings, client=client,
                               session_at=appointment.starts_at, now=now)
    digest = store.mark_digested(session=session, appointment=appointment, entries=entries, now=now)
    email = compose(
        kind="digest",
        dedupe_key=f"digest:appointment:{appointment.id}",
        rendered=render(renderer, view),
        sender=settings.from_address,
        recipient=view.therapist.email,
        now=now,
    )
    outbox.enqueue(session=session, email=email, now=now)
    log.info("digest %s queued for session %s with %d entries", digest.id, appointment.id, len(entries))
    return digest.id


def send_due(*, engine: Engine, settings: Settings, renderer: Renderer, now: datetime) -> list[int]:
    """Queue a digest for every session whose digest is due at `now`; each in its own transaction."""
    with db.reading(engine) as session:
        due_ids = [a.id for a in store.due_appointments(session=session, now=now)]
    made = []
    for appointment_id in due_ids:
        with db.transaction(engine) as session:
            appointment = session.get(Appointment, appointment_id)
            # Re-checked inside the transaction: another tick may have sent it meanwhile.
            if appointment is None or appointment.digest_status != "pending":
                continue
            digest_id = _send_one(session, appointment, settings=settings, renderer=renderer, now=now)
        if digest_id is not None:
            made.append(digest_id)
    return made
