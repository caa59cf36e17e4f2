"""The intake pipeline, written once: spool -> parse -> authenticate -> screen -> store -> notify.

The receiver runs `take` (the message is committed to the spool before the sender hears 250); the runner
runs `process` on what the spool holds (see runner.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from journal_relay import notify, spool, store
from journal_relay.authenticate import authenticate
from journal_relay.config import Settings
from journal_relay.models import Client, Entry
from journal_relay.parse import ParsedMessage, parse_message
from journal_relay.render import Renderer
from journal_relay.screen import Lexicon, Screening, load_lexicon, screen

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One message as the receiver got it."""

    raw: bytes
    envelope_from: str
    client_ids: tuple[int, ...]  # whose private addresses were accepted at RCPT
    peer: str = ""
    helo: str = ""


@dataclass(frozen=True)
class Outcome:
    entry_ids: tuple[int, ...]
    duplicates: int
    quarantined: int
    queued: tuple[str, ...]  # kinds of outbound email queued: "alert", "receipt"


@dataclass(frozen=True)
class Intake:
    """What the pipeline needs, built once at start-up."""

    settings: Settings
    lexicon: Lexicon
    renderer: Renderer


def build(settings: Settings) -> Intake:
    """Load the lexicon and templates `settings` name; raises their own clear errors when they are broken."""
    return Intake(settings=settings, lexicon=load_lexicon(settings.lexicon), renderer=Renderer(settings.templates_dir))


def sender_problem(parsed: ParsedMessage, registered: set[str]) -> str:
    """Why this message cannot be shown as the client's writing, or '' when it can."""
    if not parsed.from_addresses:
        return "no From address"
    if len(parsed.from_addresses) > 1:
        return "more than one From address"
    if parsed.from_addresses[0] not in registered:
        return "From is not one of the client's registered senders"
    return ""


def authentication_problem(delivery: Delivery, parsed: ParsedMessage, settings: Settings) -> str:
    """Why the message's origin cannot be trusted, or '' (see authenticate.py for the evidence used)."""
    if settings.auth_mode == "off" or not parsed.from_addresses:
        return ""
    verdict = authenticate(
        delivery.raw,
        mode=settings.auth_mode,
        trusted_authserv_id=settings.auth_trusted_host,
        header_values=parsed.authentication_results,
        from_domain=parsed.from_addresses[0].rpartition("@")[2],
        mail_from=delivery.envelope_from,
        client_ip=delivery.peer,
        helo=delivery.helo,
    )
    if verdict.outcome == "fail" or (verdict.outcome == "none" and settings.auth_quarantine_unverified):
        return f"sender authentication {verdict.outcome}: {verdict.reason}"
    return ""


@dataclass(frozen=True)
class Prepared:
    """What the pure stages found, before anything is stored."""

    parsed: ParsedMessage
    auth_problem: str
    screening: Screening


def prepare(delivery: Delivery, *, settings: Settings, lexicon: Lexicon) -> Prepared:
    """The pure stages: parse -> authenticate -> screen. A failure is kept for staff, never raised."""
    try:
        parsed = parse_message(delivery.raw)
        auth_problem = authentication_problem(delivery, parsed, settings)
        screening = screen(parsed.text, lexicon=lexicon)
    except Exception as exc:  # noqa: BLE001 - a bug of ours must not lose the message: keep it for staff
        log.error("message could not be processed (%s); kept in quarantine", type(exc).__name__)
        return not_processed(delivery.raw, type(exc).__name__)
    return Prepared(parsed, auth_problem, screening)


def not_processed(raw: bytes, why: str) -> Prepared:
    """A message we failed on (`why`: a class name or our own words, never content), stored for staff to
    release."""
    return Prepared(
        unprocessed(raw),
        f"could not be processed ({why}); kept for staff, release to retry",
        Screening(flags=()),
    )


def take(delivery: Delivery, *, now: datetime) -> spool.Taken:
    """The receiver's step: what goes into the spool, whose commit comes before the sender's 250."""
    return spool.Taken(raw=delivery.raw, client_ids=delivery.client_ids, envelope_from=delivery.envelope_from,
                       peer=delivery.peer, helo=delivery.helo, received_at=now)


def process(
    item: spool.Spooled, *, intake: Intake, give_up: bool = False
) -> Callable[[Session, datetime], Outcome]:
    """The back process's step: parse -> authenticate -> screen now (no lock held), then the returned step
    stores and notifies in the caller's transaction. Storing the same message again stores nothing new
    (see spool.py). `give_up`: storing it failed before, so keep it for staff without processing."""
    delivery = Delivery(raw=item.raw, envelope_from=item.envelope_from, client_ids=item.client_ids,
                        peer=item.peer, helo=item.helo)
    prepared = (
        not_processed(item.raw, "storing failed repeatedly") if give_up
        else prepare(delivery, settings=intake.settings, lexicon=intake.lexicon)
    )

    def store_and_notify(session: Session, now: datetime) -> Outcome:
        clients = store.clients_by_id(session=session, client_ids=item.client_ids)
        return _store_and_notify(session, delivery, clients, prepared, intake, received_at=item.received_at,
                                 now=now)

    return store_and_notify


def unprocessed(raw: bytes) -> ParsedMessage:
    """The least we can say about a message the parse stage failed on: enough to store it."""
    return ParsedMessage(
        message_id=f"unprocessed-{hashlib.sha256(raw).hexdigest()}@journal-relay.invalid",
        subject="",
        from_addresses=(),
        date=None,
        text="",
        attachments=(),
        automatic=True,
        authentication_results=(),
        defects=("unprocessed",),
    )


def release(*, session: Session, entry_id: int, intake: Intake, now: datetime) -> Entry:
    """Staff accept a quarantined entry: parse and screen its raw message again, alert if it calls for it."""
    entry = store.quarantined_entry(session=session, entry_id=entry_id)
    parsed = parse_message(entry.raw)
    screening = screen(parsed.text, lexicon=intake.lexicon)
    entry = store.release_entry(session=session, entry=entry, text=parsed.text, screening=screening)
    client = session.get(Client, entry.client_id)
    assert client is not None
    notify.queue_for_entry(session=session, settings=intake.settings, renderer=intake.renderer, client=client,
                           entry=entry, first=False, parsed=parsed, screening=screening, envelope_from="",
                           now=now)
    log.info("entry %s released from quarantine", entry.id)
    return entry


def _store_and_notify(
    session: Session,
    delivery: Delivery,
    clients: list[Client],
    prepared: Prepared,
    intake: Intake,
    *,
    received_at: datetime,
    now: datetime,
) -> Outcome:
    parsed, auth_problem, screening = prepared.parsed, prepared.auth_problem, prepared.screening
    entry_ids: list[int] = []
    queued: list[str] = []
    duplicates = quarantined = 0
    for client in clients:
        assert client.id is not None
        problem = (
            auth_problem
            or sender_problem(parsed, store.senders_of(session=session, client_id=client.id))
            # Taken in the moments between the client's deactivation and RCPT's memory of the address fading.
            or ("" if client.active else "the client was deactivated when this arrived")
        )
        recorded = store.record_entry(
            session=session,
            client=client,
            parsed=parsed,
            screening=screening,
            raw=delivery.raw,
            envelope_from=delivery.envelope_from,
            quarantine_reason=problem,
            now=received_at,
        )
        assert recorded.entry.id is not None
        entry_ids.append(recorded.entry.id)
        if not recorded.new:
            duplicates += 1
            log.info("entry %s: repeated message-id for client %s, kept once", recorded.entry.id, client.id)
            continue
        if problem:
            quarantined += 1
            log.warning("entry %s quarantined for client %s: %s", recorded.entry.id, client.id, problem)
        queued += notify.queue_for_entry(
            session=session,
            settings=intake.settings,
            renderer=intake.renderer,
            client=client,
            entry=recorded.entry,
            first=recorded.first,
            parsed=parsed,
            screening=screening,
            envelope_from=delivery.envelope_from,
            now=now,
        )
        log.info(
            "entry %s stored for client %s (flags: %d, severity: %s, queued: %s)",
            recorded.entry.id, client.id, len(screening.flags), screening.top_severity or "none",
            ",".join(queued) or "nothing",
        )
    return Outcome(tuple(entry_ids), duplicates, quarantined, tuple(queued))
