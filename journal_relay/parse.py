"""Parse stage: raw message bytes -> the client's own words and the facts intake needs (pure, no I/O)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str  # without angle brackets; synthesised from the bytes' hash when absent
    subject: str
    from_addresses: tuple[str, ...]  # lower-cased addr-specs from From:
    date: datetime | None
    text: str  # the client's own words: no quoted history, no signature
    attachments: tuple[Attachment, ...]
    automatic: bool  # RFC 3834 / bounce / list signals: never auto-reply to it
    authentication_results: tuple[str, ...]  # raw Authentication-Results header values
    defects: tuple[str, ...]  # names of MIME defects found (for staff, never content)


def parse_message(raw: bytes) -> ParsedMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    mid = str(msg.get("Message-ID", "") or "").strip().strip("<>")
    if not mid:
        mid = "sha256-" + hashlib.sha256(raw).hexdigest() + "@journal-relay.invalid"
    body = msg.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        try:
            text = body.get_content()
        except Exception:  # noqa: BLE001 - placeholder
            text = ""
        if body.get_content_type() == "text/html":
            text = re.sub(r"<[^>]+>", " ", text)
    kept = []
    for line in text.splitlines():
        if line.startswith(">") or re.match(r"^On .* wrote:$", line) or line.strip() == "--":
            break
        kept.append(line)
    try:
        date = parsedate_to_datetime(str(msg["Date"])) if msg["Date"] else None
    except Exception:  # noqa: BLE001
        date = None
    auto = str(msg.get("Auto-Submitted", "no")).lower() != "no" or bool(msg.get("List-Id"))
    return ParsedMessage(
        message_id=mid,
        subject=str(msg.get("Subject", "") or ""),
        from_addresses=tuple(a.lower() for _, a in getaddresses([str(msg.get("From", ""))]) if a),
        date=date,
        text="\n".join(kept).strip(),
        attachments=(),
        automatic=auto,
        authentication_results=tuple(str(v) for v in msg.get_all("Authentication-Results", [])),
        defects=(),
    )
