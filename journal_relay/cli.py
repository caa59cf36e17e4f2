"""The journal-relay command line: thin commands over the library, errors as one line saying what to fix."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from journal_relay import db, digest, intake, outbox, service, spool, store
from journal_relay.config import Settings, load_settings
from journal_relay.reach import untriggered_report
from journal_relay.render import Renderer
from journal_relay.screen import LexiconError, load_lexicon, screen, screen_jsonl, screening_to_json

F = TypeVar("F", bound=Callable[..., Any])


def now_utc() -> datetime:
    return datetime.now(UTC)


class Context:
    """Settings and engine, built on first use so `--help` and `screen` need no database."""

    def __init__(self, config_file: Path | None) -> None:
        self._config_file = config_file
        self._settings: Settings | None = None
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self._config_file)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(
                self.settings.database_url, busy_timeout_seconds=self.settings.database_busy_timeout_seconds
            )
            db.create_schema(self._engine)
        return self._engine

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with db.transaction(self.engine) as session:
            yield session


def _settings_problem(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "settings"
        name = field if field.startswith("JOURNAL_RELAY_") else f"JOURNAL_RELAY_{field.upper()}"
        parts.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "bad setting: " + "; ".join(parts)


def friendly(func: F) -> F:
    """Turn library errors into one line and a non-zero exit, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (store.NotFound, store.Conflict, LexiconError) as exc:
            raise click.ClickException(str(exc)) from None
        except ValidationError as exc:
            raise click.ClickException(_settings_problem(exc)) from None
        except OperationalError as exc:
            raise click.ClickException(
                f"the database could not be used ({type(exc.orig).__name__}); check JOURNAL_RELAY_DATABASE_URL"
            ) from None
        except (OSError, tomllib_error()) as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None

    return wrapper  # type: ignore[return-value]


def tomllib_error() -> type[Exception]:
    import tomllib

    return tomllib.TOMLDecodeError


def parse_duration(text: str) -> timedelta:
    """'2h', '90m', '1h30m', '1d' -> timedelta."""
    match = re.fullmatch(r"\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*", text)
    if not text.strip() or match is None:
        raise store.Conflict(f"cannot read duration {text!r}; write it like 2h, 90m, 1h30m or 1d")
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


_STEPS = {"day": timedelta(days=1), "week": timedelta(weeks=1), "fortnight": timedelta(weeks=2),
          "2weeks": timedelta(weeks=2)}


def session_times(at: str, *, zone: str, every: str | None, count: int) -> list[datetime]:
    """Local wall-clock start times in `zone` -> UTC instants; repeats keep the wall-clock time across DST."""
    try:
        local = datetime.fromisoformat(at)
    except ValueError:
        raise store.Conflict(f"cannot read time {at!r}; write it like 2026-12-01T15:00 (local time)") from None
    if local.tzinfo is not None:
        local = local.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    if count < 1:
        raise store.Conflict("--count must be 1 or more")
    if count > 1 and every is None:
        raise store.Conflict("--count needs --every (day, week or fortnight)")
    step = _STEPS[every] if every else timedelta(0)
    return [(local + i * step).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC) for i in range(count)]


def emit(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="TOML settings file (also JOURNAL_RELAY_CONFIG). Environment variables win over it.")
@click.version_option(package_name="journal-relay")
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """journal-relay: clients' journal emails, screened and digested for their therapist.

    \b
    Example:
      journal-relay therapist add --name "Dr Ada Byron" --email ada@practice.example
      journal-relay client add --therapist ada@practice.example --name "C. L." --sender cl@mail.example
      journal-relay serve
    """
    ctx.obj = Context(config)


# --- therapists -------------------------------------------------------------------------------


@main.group()
def therapist() -> None:
    """Add and list therapists."""


@therapist.command("add")
@click.option("--name", required=True, help="Full name, shown to clients in receipts.")
@click.option("--email", required=True, help="Where digests and alerts go.")
@click.option("--timezone", "tz", default="Europe/London", show_default=True, help="IANA time zone of sessions.")
@click.option("--digest-lead", default="2h", show_default=True, help="How long before a session the digest goes.")
@click.pass_obj
@friendly
def therapist_add(obj: Context, name: str, email: str, tz: str, digest_lead: str) -> None:
    """Register a therapist.

    \b
    Example:
      journal-relay therapist add --name "Dr Ada Byron" --email ada@practice.example \\
        --timezone Europe/London --digest-lead 2h
    """
    lead = parse_duration(digest_lead)
    with obj.transaction() as session:
        made = store.add_therapist(session=session, name=name, email=email, timezone=tz,
                                   digest_lead_minutes=int(lead.total_seconds() // 60), now=now_utc())
    click.echo(f"therapist {made.id} added: {made.email}")


@therapist.command("list")
@json_option
@click.pass_obj
@friendly
def therapist_list(obj: Context, as_json: bool) -> None:
    """List therapists.

    \b
    Example:
      journal-relay therapist list --json
    """
    with obj.transaction() as session:
        rows = [{"id": t.id, "name": t.name, "email": t.email, "timezone": t.timezone,
                 "digest_lead_minutes": t.digest_lead_minutes} for t in store.list_therapists(session=session)]
    emit(rows, as_json, ["id", "name", "email", "timezone", "digest_lead_minutes"])


# --- clients ----------------------------------------------------------------------------------


@main.group()
def client() -> None:
    """Add and list clients and their private addresses."""


@client.command("add")
@click.option("--therapist", "therapist_email", required=True, help="The therapist's email.")
@click.option("--name", required=True, help="How the therapist knows the client.")
@click.option("--sender", "senders", multiple=True, required=True, help="An address the client writes from (repeat).")
@click.pass_obj
@friendly
def client_add(obj: Context, therapist_email: str, name: str, senders: tuple[str, ...]) -> None:
    """Register a client and print their new private address.

    \b
    Example:
      journal-relay client add --therapist ada@practice.example --name "C. L." --sender cl@mail.example \\
        --sender cl@work.example
    """
    with obj.transaction() as session:
        made = store.add_client(session=session, therapist_email=therapist_email, name=name, senders=senders,
                                now=now_utc())
    click.echo(f"{made.token}@{obj.settings.domain}")


@client.command("list")
@click.option("--therapist", "therapist_email", help="Only this therapist's clients.")
@json_option
@click.pass_obj
@friendly
def client_list(obj: Context, therapist_email: str | None, as_json: bool) -> None:
    """List clients with their private addresses.

    \b
    Example:
      journal-relay client list --therapist ada@practice.example
    """
    with obj.transaction() as session:
        rows: list[dict[str, Any]] = []
        for c, t in store.list_clients(session=session, therapist_email=therapist_email):
            assert c.id is not None
            rows.append({"id": c.id, "name": c.name, "address": f"{c.token}@{obj.settings.domain}",
                         "therapist": t.email, "senders": sorted(store.senders_of(session=session, client_id=c.id))})
    if not as_json:
        for row in rows:
            row["senders"] = ",".join(row["senders"])
    emit(rows, as_json, ["id", "name", "address", "therapist", "senders"])


# --- sessions ---------------------------------------------------------------------------------


@main.group("session")
def session_group() -> None:
    """Add and list therapy sessions (each gets a digest before it)."""


@session_group.command("add")
@click.option("--client", "address", required=True, help="The client's private address.")
@click.option("--at", required=True, help="Start, local time in the therapist's zone: 2026-12-01T15:00.")
@click.option("--every", type=click.Choice(sorted(_STEPS)), help="Repeat the session.")
@click.option("--count", default=1, show_default=True, type=int, help="How many sessions, with --every.")
@click.pass_obj
@friendly
def session_add(obj: Context, address: str, at: str, every: str | None, count: int) -> None:
    """Schedule sessions for a client.

    \b
    Example:
      journal-relay session add --client 7h3k...@journal.example --at 2026-12-01T15:00 --every week --count 10
    """
    with obj.transaction() as session:
        c = store.client_by_address(session=session, address=address, domain=obj.settings.domain)
        zone = store.therapist_of(session=session, client=c).timezone
        made = store.add_appointments(session=session, client=c,
                                      starts=session_times(at, zone=zone, every=every, count=count), now=now_utc())
    for a in made:
        click.echo(f"session {a.id}: {a.starts_at.astimezone(ZoneInfo(zone)).isoformat()} "
                   f"(digest at {a.digest_due_at.astimezone(ZoneInfo(zone)).strftime('%Y-%m-%d %H:%M')})")


@session_group.command("list")
@click.option("--client", "address", help="Only this client's sessions.")
@click.option("--all", "show_all", is_flag=True, help="Include past sessions.")
@json_option
@click.pass_obj
@friendly
def session_list(obj: Context, address: str | None, show_all: bool, as_json: bool) -> None:
    """List sessions and the state of their digests.

    \b
    Example:
      journal-relay session list --client 7h3k...@journal.example --json
    """
    with obj.transaction() as session:
        c = store.client_by_address(session=session, address=address, domain=obj.settings.domain) if address else None
        rows = [{"id": a.id, "client": f"{cl.token}@{obj.settings.domain}", "starts_at": a.starts_at.isoformat(),
                 "digest_due_at": a.digest_due_at.isoformat(), "digest": a.digest_status}
                for a, cl in store.list_appointments(session=session, client=c,
                                                     upcoming_after=None if show_all else now_utc())]
    emit(rows, as_json, ["id", "client", "starts_at", "digest_due_at", "digest"])


# --- service ----------------------------------------------------------------------------------


@main.command()
@click.pass_obj
@friendly
def serve(obj: Context) -> None:
    """Run the SMTP receiver, the deliverer and the digest scheduler until SIGTERM or Ctrl-C.

    \b
    Example:
      JOURNAL_RELAY_DOMAIN=journal.example JOURNAL_RELAY_RELAY=smtp://127.0.0.1:25 journal-relay serve
    """
    settings = obj.settings
    service.configure_logging(settings)
    service.serve(settings)


# --- digests ----------------------------------------------------------------------------------


@main.group("digest")
def digest_group() -> None:
    """Look at digests before they go."""


@digest_group.command("preview")
@click.option("--client", "address", required=True, help="The client's private address.")
@click.option("--html", is_flag=True, help="Print the HTML part instead of the text.")
@click.pass_obj
@friendly
def digest_preview(obj: Context, address: str, html: bool) -> None:
    """Print the digest that would go out next, without sending or marking anything.

    \b
    Example:
      journal-relay digest preview --client 7h3k...@journal.example
    """
    with obj.transaction() as session:
        c = store.client_by_address(session=session, address=address, domain=obj.settings.domain)
        rendered = digest.preview(session=session, settings=obj.settings,
                                  renderer=Renderer(obj.settings.templates_dir), client=c, now=now_utc())
        session.rollback()
    click.echo(f"Subject: {rendered.subject}\n")
    click.echo(rendered.html if html and rendered.html else rendered.text)


# --- flags ------------------------------------------------------------------------------------


@main.group()
def flags() -> None:
    """List and acknowledge risk flags."""


@flags.command("list")
@click.option("--therapist", "therapist_email", help="Only this therapist's clients.")
@click.option("--all", "show_all", is_flag=True, help="Include acknowledged flags.")
@json_option
@click.pass_obj
@friendly
def flags_list(obj: Context, therapist_email: str | None, show_all: bool, as_json: bool) -> None:
    """List flags not yet acknowledged.

    \b
    Example:
      journal-relay flags list --therapist ada@practice.example --json
    """
    with obj.transaction() as session:
        rows = [{"id": f.id, "entry": e.id, "client": c.name, "received_at": e.received_at.isoformat(),
                 "category": f.category, "severity": f.severity, "rule": f.rule, "match": f.match,
                 "status": e.status, "acknowledged": f.acknowledged_at.isoformat() if f.acknowledged_at else ""}
                for f, e, c in store.list_flags(session=session, therapist_email=therapist_email,
                                                include_acknowledged=show_all)]
    emit(rows, as_json, ["id", "entry", "client", "received_at", "category", "severity", "rule", "match"])


@flags.command("ack")
@click.argument("flag_id", type=int)
@click.option("--by", default="", help="Who acknowledges (name or email).")
@click.pass_obj
@friendly
def flags_ack(obj: Context, flag_id: int, by: str) -> None:
    """Acknowledge a flag: it leaves 'flags list'.

    \b
    Example:
      journal-relay flags ack 12 --by ada@practice.example
    """
    with obj.transaction() as session:
        flag = store.acknowledge_flag(session=session, flag_id=flag_id, by=by, now=now_utc())
    click.echo(f"flag {flag.id} acknowledged")


# --- quarantine -------------------------------------------------------------------------------


@main.group()
def quarantine() -> None:
    """Messages kept aside: not from a registered sender, or failing authentication."""


@quarantine.command("list")
@json_option
@click.pass_obj
@friendly
def quarantine_list(obj: Context, as_json: bool) -> None:
    """List quarantined messages (never shown to the therapist as the client's writing).

    \b
    Example:
      journal-relay quarantine list --json
    """
    with obj.transaction() as session:
        rows = [{"id": e.id, "client": c.name, "received_at": e.received_at.isoformat(), "from": e.from_address,
                 "reason": e.quarantine_reason} for e, c in store.list_quarantine(session=session)]
    emit(rows, as_json, ["id", "client", "received_at", "from", "reason"])


@quarantine.command("release")
@click.argument("entry_id", type=int)
@click.pass_obj
@friendly
def quarantine_release(obj: Context, entry_id: int) -> None:
    """Accept a quarantined message as the client's writing (it joins the next digest).

    \b
    Example:
      journal-relay quarantine release 31
    """
    pipeline = intake.build(obj.settings)
    with obj.transaction() as session:
        entry = intake.release(session=session, entry_id=entry_id, intake=pipeline, now=now_utc())
    click.echo(f"entry {entry.id} released; it joins the client's next digest")


# --- outbox -----------------------------------------------------------------------------------


@main.group("outbox")
def outbox_group() -> None:
    """See and nudge outbound mail (digests, alerts, receipts)."""


@outbox_group.command("list")
@click.option("--pending", is_flag=True, help="Only mail not yet delivered.")
@json_option
@click.pass_obj
@friendly
def outbox_list(obj: Context, pending: bool, as_json: bool) -> None:
    """List outbound mail and its delivery state.

    \b
    Example:
      journal-relay outbox list --pending
    """
    with obj.transaction() as session:
        rows = [{"id": r.id, "kind": r.kind, "to": r.recipient, "status": r.status, "attempts": r.attempts,
                 "next_attempt_at": r.next_attempt_at.isoformat() if r.status == "pending" else "",
                 "last_error": r.last_error} for r in outbox.list_rows(session=session, pending_only=pending)]
    emit(rows, as_json, ["id", "kind", "to", "status", "attempts", "next_attempt_at", "last_error"])


@outbox_group.command("retry")
@click.pass_obj
@friendly
def outbox_retry(obj: Context) -> None:
    """Make all pending mail due now (after fixing the relay); a running serve picks it up within seconds.

    \b
    Example:
      journal-relay outbox retry
    """
    with obj.transaction() as session:
        count = outbox.retry_now(session=session, now=now_utc())
    click.echo(f"{count} pending message(s) due now")


# --- screening --------------------------------------------------------------------------------


@main.command("screen")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--jsonl", is_flag=True, help='Read lines of {"id": ..., "text": ...}; write one result per line.')
@click.pass_obj
@friendly
def screen_command(obj: Context, file: Any, jsonl: bool) -> None:
    """Screen text for risk language (stdin when no FILE) and print the findings as JSON.

    \b
    Example:
      echo "I want to disappear" | journal-relay screen
      journal-relay screen --jsonl entries.jsonl > results.jsonl
    """
    lexicon = load_lexicon(obj.settings.lexicon)
    if jsonl:
        for line in screen_jsonl(file, lexicon=lexicon):
            click.echo(line)
        return
    click.echo(json.dumps(screening_to_json(screen(file.read(), lexicon=lexicon)), indent=2, ensure_ascii=False))


# The back process stores a message within milliseconds; minutes mean it is down or failing.
SPOOL_STUCK_SECONDS = 600


def spool_state(settings: Settings) -> tuple[int, float | None]:
    """How many messages wait in the spool, and how many seconds the oldest has waited."""
    engine = db.make_engine(settings.spool_database_url)
    try:
        spool.create(engine)
        with db.reading(engine) as session:
            waiting = spool.size(session=session)
            oldest = spool.oldest(session=session)
    finally:
        engine.dispose()
    return waiting, (now_utc() - oldest).total_seconds() if oldest is not None else None


@main.command("check")
@click.option("--spool", "watch_spool", is_flag=True,
              help="Also fail when the spool's oldest message has waited over ten minutes (for monitoring; "
              "not before starting serve, which is what empties the spool).")
@click.pass_obj
@friendly
def check(obj: Context, watch_spool: bool) -> None:
    """Check settings, database, spool, templates and lexicon, and print the effective settings.

    \b
    Example:
      JOURNAL_RELAY_CONFIG=/etc/journal-relay/config.toml journal-relay check
      journal-relay check --spool     # from a monitoring job, while serve runs
    """
    settings = obj.settings
    _ = obj.engine
    built = intake.build(settings)
    for name, value in settings.model_dump().items():
        shown = (re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", str(value))
                 if name in ("relay", "database_url", "spool_url") else value)
        click.echo(f"{name} = {shown}")
    waiting, oldest = spool_state(settings)
    click.echo(f"spool: {waiting} message(s) waiting to be screened and stored"
               + (f", the oldest taken {oldest:.0f} s ago" if oldest is not None else ""))
    if watch_spool and oldest is not None and oldest > SPOOL_STUCK_SECONDS:
        raise click.ClickException(
            f"the spool's oldest message has waited {oldest:.0f} s: is `journal-relay serve` running? "
            "Its log says why a message is not stored (look for 'spooled message')."
        )
    for line in untriggered_report(built.lexicon):  # the practice file's rules (the built-in ones are known)
        click.echo(f"lexicon: {line}")
    click.echo("ok: settings, database, spool, templates and lexicon load")


if __name__ == "__main__":
    sys.exit(main())
