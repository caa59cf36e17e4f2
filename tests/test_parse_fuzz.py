"""Fuzz the parse stage over generated MIME: it must never raise and must return the right types."""

from __future__ import annotations

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journal_relay.parse import Attachment, ParsedMessage, parse_message

CHARSETS = ["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "koi8-r", "shift_jis", "gb2312", "utf-16",
            "utf-7", "x-unknown", "unicode_escape", "base64", "", '"', "utf-8\x00", "iso-2022-jp", "big5"]
HEADER_NAMES = ["From", "To", "Subject", "Date", "Message-ID", "Content-Type", "Content-Transfer-Encoding",
                "Content-Disposition", "Auto-Submitted", "List-Id", "Authentication-Results", "Precedence",
                "X-Auto-Response-Suppress", "Return-Path", "MIME-Version", "X-\xff\xfe", "Sender"]
CTE = ["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "binary", "bogus"]
SUBTYPES = ["text/plain", "text/html", "text/calendar", "application/pdf", "message/rfc822",
            "message/delivery-status", "image/png", "text/plain; format=flowed; delsp=yes"]

raw_bytes = st.binary(max_size=300)
header_value = st.one_of(
    raw_bytes.map(lambda b: b.replace(b"\r", b"").replace(b"\n", b" ")),
    st.text(max_size=80).map(lambda s: s.encode("utf-8", "surrogatepass").replace(b"\n", b" ")),
    st.sampled_from([b"=?utf-8?B?w6k=?=", b"=?x-bad?Q?=FF=00?=", b"=?utf-8?B?!!!?=", b"<>", b"<a@b>",
                     b"Mon, 99 Foo 2025 99:99:99 +9999", b"auto-replied", b"bulk", b"All, OOF"]),
)


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 8))):
        name = draw(st.sampled_from(HEADER_NAMES)).encode("latin-1")
        out += name + b": " + draw(header_value) + b"\r\n"
    return out


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    ctype = draw(st.sampled_from(SUBTYPES))
    charset = draw(st.sampled_from(CHARSETS))
    cte = draw(st.sampled_from(CTE))
    body = draw(st.one_of(raw_bytes, st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
                          st.sampled_from([b"On Mon, Mar 3, 2025 at 9:14 PM X <x@y> wrote:\r\n> q\r\n",
                                           b"<blockquote type=cite>q</blockquote><script>x</script>",
                                           b"-- \r\nsig", b"\x00" * 10, b">" * 500])))
    return (f"Content-Type: {ctype}; charset=\"{charset}\"\r\nContent-Transfer-Encoding: {cte}\r\n".encode()
            + draw(headers()) + b"\r\n" + body)


def multipart(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        boundary = draw(st.sampled_from(["b", "=_x", "a b", "", "--", "\xff"])).encode("utf-8", "surrogateescape")
        sub = draw(st.sampled_from(["mixed", "alternative", "related", "report", "signed", "encrypted", "digest"]))
        parts = draw(st.lists(children, max_size=4))
        body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
        if draw(st.booleans()):
            body += b"--" + boundary + b"--\r\n"
        return b'Content-Type: multipart/' + sub.encode() + b'; boundary="' + boundary + b'"\r\n\r\n' + body
    return build()


mime = st.recursive(leaf(), multipart, max_leaves=12)


@st.composite
def message(draw: st.DrawFn) -> bytes:
    raw = draw(headers()) + draw(mime)
    if draw(st.booleans()):  # truncation
        raw = raw[: draw(st.integers(0, len(raw)))]
    if draw(st.booleans()):  # a NUL or stray bytes somewhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\x00", b"\xff\xfe", b"\r", b"\n\n", b"\r\n--b--\r\n"])) + raw[at:]
    return raw


def _check(p: ParsedMessage) -> None:
    assert isinstance(p, ParsedMessage)
    assert isinstance(p.message_id, str) and p.message_id and "<" not in p.message_id
    assert isinstance(p.subject, str) and "\n" not in p.subject and "\x00" not in p.subject
    assert all(isinstance(a, str) and a == a.lower() for a in p.from_addresses)
    assert p.date is None or (isinstance(p.date, datetime) and p.date.tzinfo is not None)
    assert isinstance(p.text, str) and "\x00" not in p.text
    p.text.encode("utf-8")  # no lone surrogates
    p.subject.encode("utf-8")
    assert all(isinstance(a, Attachment) and isinstance(a.size, int) and a.size >= 0 for a in p.attachments)
    assert isinstance(p.automatic, bool)
    assert all(isinstance(v, str) for v in p.authentication_results)
    assert all(isinstance(d, str) and d.isidentifier() for d in p.defects)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message())
def test_generated_mime_never_raises(raw: bytes) -> None:
    p = parse_message(raw)
    _check(p)
    assert "ParseFailure" not in p.defects  # the catch-all fallback must not be hiding a bug


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    _check(parse_message(raw))
