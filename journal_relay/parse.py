"""Parse stage: raw message bytes -> the client's own words and the facts intake needs (pure, no I/O).

``parse_message`` never raises, whatever bytes it is given. It never logs; defects are recorded by name
only (MIME defect class names from the stdlib parser plus the names listed in ``DEFECT_NAMES``), never
with message content.

Imports nothing from the rest of the package; helpers: ``quoting`` (plain-text reply extraction) and
``html_text`` (HTML to readable text).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.parser
import email.policy
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from .html_text import html_to_text
from .quoting import extract_reply

__all__ = ["Attachment", "ParsedMessage", "parse_message", "DEFECT_NAMES"]

#: Defect names this module adds (besides the stdlib's ``email.errors`` class names).
DEFECT_NAMES = (
    "ParseFailure",  # the full MIME parse failed; headers-only fallback used
    "DepthLimitExceeded",  # multipart nesting deeper than MAX_DEPTH; deeper parts ignored
    "PartLimitExceeded",  # more than MAX_PARTS MIME parts; the rest ignored
    "UnknownCharset",  # a charset label Python does not know (or refuses); decoded by detection
    "CharsetMismatch",  # the bytes are not in the declared charset; decoded by detection
    "UndecodableText",  # no charset fits; decoded with replacement characters
    "NonASCIIHeader",  # raw 8-bit bytes in a header
    "NulByte",  # a NUL byte somewhere in the message
    "MissingMessageID",
    "InvalidMessageID",
    "InvalidDate",
    "DuplicateFromHeader",
    "DuplicateSubjectHeader",
    "DuplicateDateHeader",
    "DuplicateMessageIDHeader",
    "EncryptedBody",  # multipart/encrypted: nothing readable
    "PayloadDecodeError",  # a part's transfer encoding could not be undone
    "HtmlOnly",  # no text/plain alternative; text came from HTML
    "HtmlAsPlain",  # a text/plain part (or one with no Content-Type) that is an HTML document; read as HTML
)

MAX_DEPTH = 16  # multipart nesting walked
MAX_PARTS = 256  # MIME parts walked


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int  # decoded bytes


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
    hops: int = 0  # Received: headers; too many means a mail loop


# --------------------------------------------------------------------------------------------- charsets

_CHARSET_ALIASES = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949",
    "iso-8859-8-i": "iso8859-8", "iso-8859-6-i": "iso8859-6",
    "windows-874": "cp874", "tis-620": "cp874", "x-mac-roman": "mac-roman", "macintosh": "mac-roman",
    "shift-jis": "cp932", "shift_jis": "cp932", "x-sjis": "cp932", "sjis": "cp932",
    "big5": "big5hkscs", "unicode-1-1-utf-7": "utf-7", "utf8": "utf-8", "unicode": "utf-16",
    "x-user-defined": "cp1252", "us-ascii": "ascii", "ansi_x3.4-1968": "ascii",
}
_REFUSED_CODECS = frozenset({"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "mbcs",
                             "oem", "charmap", "unicode-internal", "utf-8-sig"})
# Declared single-byte "western" charsets: any byte decodes, so a lie shows only as mojibake.
_LATIN = frozenset({"ascii", "iso8859-1", "cp1252", "iso8859-15", "latin-1"})
_codec_cache: dict[str, str | None] = {}


def _codec(label: str) -> str | None:
    label = label.strip().strip("\"'").lower()
    if not label:
        return None
    if label in _codec_cache:
        return _codec_cache[label]
    name = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(name)
        result: str | None = info.name
        if result in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
            result = None
    except (LookupError, ValueError, TypeError):
        result = None
    if len(_codec_cache) < 512:
        _codec_cache[label] = result
    return result


def _detect(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - dependency missing: degrade, never crash
        return None
    try:
        best = from_bytes(data[:200_000]).best()
    except Exception:  # noqa: BLE001 - third-party detector on hostile bytes
        return None
    if best is None:
        return None
    try:
        data.decode(best.encoding)
        return best.encoding
    except (UnicodeDecodeError, LookupError):
        return None


def _decode_bytes(data: bytes, label: str | None, defects: list[str]) -> str:
    """Bytes in a declared (possibly wrong, unknown or missing) charset -> str, never raising."""
    if not data:
        return ""
    codec = _codec(label) if label else None
    if label and codec is None:
        defects.append("UnknownCharset")
    if data.isascii() and (codec is None or codec in _LATIN or codec == "utf-8"):
        return data.decode("ascii")
    if codec is not None:
        if codec in _LATIN:
            # Latin-1/ASCII labels never fail to decode: bytes that are valid UTF-8 were mislabelled.
            try:
                text = data.decode("utf-8")
                defects.append("CharsetMismatch")
                return text
            except UnicodeDecodeError:
                pass
            if codec != "ascii":
                try:
                    return data.decode("cp1252")  # what every mail client means by Latin-1
                except UnicodeDecodeError:
                    return data.decode("latin-1")
        else:
            try:
                return data.decode(codec)
            except (UnicodeDecodeError, LookupError, ValueError):
                pass
        defects.append("CharsetMismatch")
    else:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    detected = _detect(data)
    if detected is not None:
        return data.decode(detected)
    defects.append("UndecodableText")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------- headers

_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ENCODED_WORD = re.compile(r"=\?([^?\s*]{1,64})(?:\*[^?\s]{0,32})?\?([bBqQ])\?([^?\s]*)\?=")
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufffe\uffff]+")
_SPACES = re.compile(r"\s+")
_MSGID = re.compile(r"<([!-;=?-~]{1,250})>")
_MSGID_BARE = re.compile(r"^[!-;=?-~]{1,250}@[!-;=?-~]{1,250}$")
_ADDR_OK = re.compile(r"^[^\s@\x00-\x1f\x7f]{1,64}@[^\s@\x00-\x1f\x7f]{1,255}$")
_AUTOMATIC_LOCALPART = re.compile(
    r"^(?:mailer-daemon|postmaster|(?:no|do[-_.]?not)[-_.]?reply(?:[-_.+].*)?|.*[-_.+](?:no|do[-_.]?not)[-_.]?reply)$"
)
_AUTOMATIC_TYPES = frozenset({
    "multipart/report", "message/delivery-status", "message/global-delivery-status",
    "message/feedback-report", "message/disposition-notification", "message/global-disposition-notification",
})
_LIST_HEADERS = frozenset({"list-id", "list-unsubscribe", "list-post", "list-help", "list-subscribe",
                           "list-owner", "list-archive", "list-unsubscribe-post"})


def _raw_header_text(value: object, defects: list[str]) -> str:
    """A stored header value (str with surrogate-escaped 8-bit bytes) -> unfolded str, 8-bit decoded."""
    if not isinstance(value, str):
        value = str(value)
    if not value.isascii():
        try:
            data = value.encode("ascii", "surrogateescape")
            defects.append("NonASCIIHeader")
            value = _decode_bytes(data, None, defects)
        except UnicodeEncodeError:
            pass  # already real unicode
    return _FOLD.sub("", value)


def _decode_words(value: str, defects: list[str]) -> str:
    """RFC 2047 encoded-words -> text; whitespace between adjacent encoded words dropped."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    pos = 0
    last_was_word = False

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            out.append(_decode_bytes(b"".join(pending), pending_charset, defects))
        pending = []
        pending_charset = ""

    for m in _ENCODED_WORD.finditer(value):
        between = value[pos:m.start()]
        if not (last_was_word and not between.strip()):
            flush()
            out.append(between)
        charset, enc, payload = m.group(1), m.group(2).lower(), m.group(3)
        try:
            if enc == "b":
                payload = payload.rstrip("=")
                data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=False)
            else:
                data = binascii.a2b_qp(payload.encode("ascii", "replace"), header=True)
        except (binascii.Error, ValueError):
            flush()
            out.append(m.group(0))
            pos = m.end()
            last_was_word = False
            continue
        if pending and charset.lower() != pending_charset:
            flush()
        pending.append(data)
        pending_charset = charset.lower()
        pos = m.end()
        last_was_word = True
    flush()
    out.append(value[pos:])
    return "".join(out)


def _safe_line(value: str, limit: int = 2000) -> str:
    return _SPACES.sub(" ", _HEADER_UNSAFE.sub(" ", value)).strip()[:limit]


class _Headers:
    """Top-level headers by lower-cased name, values as stored (raw, folded, surrogate-escaped)."""

    def __init__(self, msg: Message, defects: list[str]):
        self.defects = defects
        self.by_name: dict[str, list[str]] = {}
        for name, value in msg.raw_items():
            key = str(name).strip().lower()
            self.by_name.setdefault(key, []).append(value if isinstance(value, str) else str(value))

    def all(self, name: str) -> list[str]:
        return [_raw_header_text(v, self.defects) for v in self.by_name.get(name, ())]

    def first(self, name: str, duplicate_defect: str | None = None) -> str | None:
        values = self.by_name.get(name)
        if not values:
            return None
        if duplicate_defect and len(values) > 1:
            self.defects.append(duplicate_defect)
        return _raw_header_text(values[0], self.defects)

    def has(self, name: str) -> bool:
        return name in self.by_name


def _message_id(headers: _Headers, raw: bytes) -> str:
    value = headers.first("message-id", "DuplicateMessageIDHeader")
    if value is not None:
        value = value.strip()
        m = _MSGID.search(value)
        if m:
            return m.group(1)
        if _MSGID_BARE.match(value):
            return value
        headers.defects.append("InvalidMessageID" if value else "MissingMessageID")
    else:
        headers.defects.append("MissingMessageID")
    return "sha256-" + hashlib.sha256(raw).hexdigest() + "@journal-relay.invalid"


def _date(headers: _Headers) -> datetime | None:
    value = headers.first("date", "DuplicateDateHeader")
    if value is None:
        return None
    try:
        dt = parsedate_to_datetime(_safe_line(value, 200))
    except (TypeError, ValueError, IndexError, OverflowError, AttributeError):
        headers.defects.append("InvalidDate")
        return None
    if dt is None:
        headers.defects.append("InvalidDate")
        return None
    if dt.tzinfo is None:  # "-0000": UTC, local zone unknown (RFC 5322 3.3)
        dt = dt.replace(tzinfo=UTC)
    return dt


def _addresses(values: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    try:
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001 - stdlib address parser on hostile input
        return ()
    for _, addr in pairs:
        addr = addr.strip().lower()
        if _ADDR_OK.match(addr) and addr not in out:
            out.append(addr)
    return tuple(out)


def _localparts(values: list[str]) -> list[str]:
    parts = []
    for value in values:
        for token in re.findall(r"[^\s<>,;:\"()]+", value.lower())[:50]:
            parts.append(token.split("@", 1)[0])
    return parts


def _automatic_headers(headers: _Headers) -> bool:
    for value in headers.all("auto-submitted"):
        if value.split(";", 1)[0].strip().lower() != "no":
            return True
    for value in headers.all("precedence"):
        if value.strip().lower() in ("bulk", "junk", "list", "auto_reply"):
            return True
    if any(headers.has(h) for h in _LIST_HEADERS):
        return True
    if headers.has("x-autoreply") or headers.has("x-autorespond") or headers.has("x-journal-relay-loop"):
        return True
    for value in headers.all("x-auto-response-suppress"):
        tokens = {t.strip().lower() for t in re.split(r"[,\s]+", value)}
        if tokens & {"all", "autoreply", "oof"}:
            return True
    for value in headers.all("return-path"):
        if value.strip() in ("<>", ""):
            return True
    senders = headers.all("from") + headers.all("sender")
    return any(_AUTOMATIC_LOCALPART.match(lp) for lp in _localparts(senders))


# --------------------------------------------------------------------------------------------- bodies

_CT_OK = re.compile(r"^[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,128}$")
_TEXT_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_NEWLINES = re.compile(r"\r\n?")
# An HTML document sent as text/plain (broken mailers, or no Content-Type at all, which means text/plain):
# read as text it is markup, which the client never wrote and the screener would read.
_HTML_DOCUMENT = re.compile(r"\A\s*(?:<\?xml[^>]{0,200}\?>\s*)?(?:<!doctype\s+html\b|<html\b)", re.IGNORECASE)


class _Walk:
    def __init__(self, defects: list[str]):
        self.defects = defects
        self.attachments: list[Attachment] = []
        self.automatic = False
        self.parts = 0
        self.saw_plain = False
        self.saw_html = False


def _content_type(part: Message) -> str:
    try:
        ctype = str(part.get_content_type()).strip().lower()
    except Exception:  # noqa: BLE001
        return "application/octet-stream"
    return ctype if _CT_OK.match(ctype) else "application/octet-stream"


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:  # noqa: BLE001
        return None
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        try:
            value = email.utils.collapse_rfc2231_value(value)
        except Exception:  # noqa: BLE001
            value = str(value[-1])
    return str(value)


def _filename(part: Message, defects: list[str]) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    if name is None:
        return None
    name = _safe_line(_decode_words(_raw_header_text(name, defects), defects), 255)
    return name or None


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:  # noqa: BLE001
        return None


def _payload_bytes(part: Message, walk: _Walk) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - broken transfer encoding
        walk.defects.append("PayloadDecodeError")
        return b""
    if isinstance(data, bytes):
        return data
    return b""


def _part_size(part: Message, walk: _Walk) -> int:
    if part.is_multipart():
        try:
            return len(part.as_bytes())
        except Exception:  # noqa: BLE001
            return 0
    return len(_payload_bytes(part, walk))


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed -> hard lines (soft line breaks joined), quote depth respected."""
    out: list[str] = []
    buf = ""
    buf_depth = -1
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        prefix = ">" * depth + (" " if depth else "")
        if buf and depth != buf_depth:
            out.append(buf)
            buf = ""
        flowed = content.endswith(" ") and content != "-- "
        if flowed and delsp:
            content = content[:-1]
        if buf:
            buf += content
        else:
            buf = prefix + content
            buf_depth = depth
        if not flowed:
            out.append(buf)
            buf = ""
    if buf:
        out.append(buf)
    return "\n".join(out)


def _leaf_text(part: Message, subtype: str, walk: _Walk) -> tuple[str, str]:
    data = _payload_bytes(part, walk)
    text = _decode_bytes(data, _param(part, "charset"), walk.defects)
    text = _TEXT_UNSAFE.sub("", _NEWLINES.sub("\n", text)).lstrip("\ufeff")
    if subtype == "plain" and (_param(part, "format") or "").lower() == "flowed":
        text = _unflow(text, (_param(part, "delsp") or "").lower() == "yes")
    if subtype == "plain" and _HTML_DOCUMENT.match(text):
        walk.defects.append("HtmlAsPlain")
        return "html", text
    return subtype, text


def _record_attachment(part: Message, ctype: str, walk: _Walk) -> None:
    walk.attachments.append(Attachment(_filename(part, walk.defects), ctype, _part_size(part, walk)))


def _walk(part: Message, depth: int, walk: _Walk, is_root: bool) -> list[tuple[str, str]]:
    """Text segments ("plain"|"html", text) of this part; attachments and signals recorded on walk."""
    walk.parts += 1
    if walk.parts > MAX_PARTS:
        walk.defects.append("PartLimitExceeded")
        return []
    if depth > MAX_DEPTH:
        walk.defects.append("DepthLimitExceeded")
        return []
    walk.defects.extend(type(d).__name__ for d in getattr(part, "defects", ()))
    ctype = _content_type(part)
    if ctype in _AUTOMATIC_TYPES:
        walk.automatic = True
    maintype, _, subtype = ctype.partition("/")
    if part.is_multipart():
        try:
            children = [c for c in part.get_payload() if isinstance(c, Message)]
        except Exception:  # noqa: BLE001
            children = []
        if maintype == "message":  # message/rfc822 & co: an enclosed message, never the client's words
            _record_attachment(part, ctype, walk)
            return []
        if subtype == "encrypted":
            walk.defects.append("EncryptedBody")
        if subtype == "alternative":
            return _alternative(children, depth, walk)
        segments: list[tuple[str, str]] = []
        for child in children:
            segments.extend(_walk(child, depth + 1, walk, False))
            if walk.parts > MAX_PARTS:
                break
        return segments
    disposition = _disposition(part)
    if maintype == "text" and subtype in ("plain", "html") and (
        is_root or (disposition != "attachment" and _filename(part, []) is None)
    ):
        if subtype == "plain":
            walk.saw_plain = True
        else:
            walk.saw_html = True
        return [_leaf_text(part, subtype, walk)]
    _record_attachment(part, ctype, walk)
    return []


def _alternative(children: list[Message], depth: int, walk: _Walk) -> list[tuple[str, str]]:
    """Pick one rendering: text/plain preferred, then text/html, then a nested multipart."""
    candidates: list[list[tuple[str, str]]] = []
    for child in children:
        segs = _walk(child, depth + 1, walk, False)
        if segs and any(t.strip() for _, t in segs):
            candidates.append(segs)
    for kind in ("plain", "html"):
        for segs in candidates:
            if all(k == kind for k, _ in segs):
                return segs
    return candidates[0] if candidates else []


def _segments_text(segments: list[tuple[str, str]]) -> str:
    texts = []
    for kind, text in segments:
        texts.append(html_to_text(text) if kind == "html" else text)
    return extract_reply("\n\n".join(t for t in texts if t.strip()))


# --------------------------------------------------------------------------------------------- entry point

def _coerce(raw: object) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, (bytearray, memoryview)):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def _parse(raw: bytes, headers_only: bool, defects: list[str]) -> ParsedMessage:
    if b"\x00" in raw:
        defects.append("NulByte")
    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw, headersonly=headers_only)
    headers = _Headers(msg, defects)
    walk = _Walk(defects)
    text = ""
    if not headers_only:
        segments = _walk(msg, 0, walk, True)
        text = _segments_text(segments)
        if walk.saw_html and not walk.saw_plain:
            defects.append("HtmlOnly")
    subject_values = headers.first("subject", "DuplicateSubjectHeader")
    subject = _safe_line(_decode_words(subject_values, defects)) if subject_values is not None else ""
    from_values = headers.all("from")
    if len(from_values) > 1:
        defects.append("DuplicateFromHeader")
    automatic = walk.automatic or _automatic_headers(headers)
    try:
        top_type = _content_type(msg)
        automatic = automatic or top_type in _AUTOMATIC_TYPES
    except Exception:  # noqa: BLE001
        pass
    return ParsedMessage(
        message_id=_message_id(headers, raw),
        subject=subject,
        from_addresses=_addresses(from_values),
        date=_date(headers),
        text=text,
        attachments=tuple(walk.attachments),
        automatic=automatic,
        authentication_results=tuple(v.strip() for v in headers.all("authentication-results")),
        defects=tuple(dict.fromkeys(defects)),
        hops=count_hops(raw),
    )


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_RECEIVED = re.compile(rb"^received[ \t]*:", re.IGNORECASE | re.MULTILINE)


def count_hops(raw: bytes) -> int:
    """Received: header fields in the header block: cheap enough to ask before accepting a message."""
    end = _HEADER_END.search(raw)
    return len(_RECEIVED.findall(raw, 0, end.start() if end else len(raw)))


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse one message. Pure and total: never raises, for any input bytes."""
    data = _coerce(raw)
    for headers_only in (False, True):
        defects: list[str] = [] if not headers_only else ["ParseFailure"]
        try:
            return _parse(data, headers_only, defects)
        except Exception:  # noqa: BLE001 - includes RecursionError; fall back to headers only
            continue
    return ParsedMessage(
        message_id="sha256-" + hashlib.sha256(data).hexdigest() + "@journal-relay.invalid",
        subject="",
        from_addresses=(),
        date=None,
        text="",
        attachments=(),
        automatic=True,  # unknown: never auto-reply to what we could not read
        authentication_results=(),
        defects=("ParseFailure",),
    )
