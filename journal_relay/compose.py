"""Compose stage: rendered text -> a complete RFC 5322 email as bytes (pure)."""

from __future__ import annotations

import email.policy
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from journal_relay.outbox import Email
from journal_relay.render import Rendered

LOOP_HEADER = "X-Journal-Relay-Loop"


def compose(
    *,
    kind: str,
    dedupe_key: str,
    rendered: Rendered,
    sender: str,
    recipient: str,
    now: datetime,
    auto_submitted: str = "auto-generated",
    in_reply_to: str | None = None,
) -> Email:
    # Fold headers only past RFC 5322's hard limit: a long Message-ID in In-Reply-To must stay a bare token,
    # not become an RFC 2047 encoded word that no mail client threads by.
    msg = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
    domain = sender.rpartition("@")[2] or "journal-relay.invalid"
    message_id = make_msgid(idstring=kind, domain=domain)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    # RFC 3834: mark every email we send as automatic, so no responder answers it and no loop starts.
    msg["Auto-Submitted"] = auto_submitted
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = domain
    if in_reply_to and not in_reply_to.endswith(".invalid"):
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    msg.set_content(rendered.text)
    if rendered.html is not None:
        msg.add_alternative(rendered.html, subtype="html")
    return Email(
        kind=kind,
        dedupe_key=dedupe_key,
        recipient=recipient,
        sender=sender,
        message_id=message_id.strip("<>"),
        raw=msg.as_bytes(),
    )
