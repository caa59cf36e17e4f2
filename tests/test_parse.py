"""Parse stage: client samples, headers, charsets, attachments, automatic-mail signals, hostile input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from journal_relay.parse import Attachment, ParsedMessage, parse_message

MAIL = Path(__file__).resolve().parent / "data" / "mail"


def sample(name: str) -> ParsedMessage:
    return parse_message((MAIL / name).read_bytes())


def msg(body: str | bytes, headers: str = "", ctype: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        "From: Client <client@example.org>\r\nTo: journal@practice.example\r\nSubject: week\r\n"
        "Message-ID: <m1@example.org>\r\nDate: Tue, 4 Mar 2025 08:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: {ctype}\r\n{headers}\r\n"
    ).encode()
    return head + (body.encode() if isinstance(body, str) else body)


# ------------------------------------------------------------------------------ client samples

@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gmail_alternative.eml",
         "Slept badly on Sunday, maybe four hours. Monday was better \u2013 I went for a walk before work."),
        ("apple_mail.eml",
         "I wrote three pages on Sunday evening about my father and it helped more than I expected."),
        ("iphone.eml",
         "Had a panic attack on the train on Friday but I got through it with the breathing."),
        ("android_gmail.eml", "I argued with my sister again and then felt numb all evening."),
        ("outlook_original_message.eml", "Work was stressful but I used the grounding technique twice."),
        ("yahoo.eml", "I kept the mood diary every day. Mostly a 5 out of 10."),
        ("german_reply.eml", "Die Woche war schwer, aber ich habe jeden Tag geschrieben. Gr\u00fc\u00dfe."),
        ("french_reply.eml", "J'ai mieux dormi cette semaine, sauf jeudi."),
        ("spanish_reply.eml", "Esta semana sal\u00ed a caminar cuatro veces."),
    ],
)
def test_client_reply_is_only_the_clients_words(name: str, expected: str) -> None:
    assert sample(name).text == expected


def test_outlook_desktop_html_drops_header_block_and_decodes_cp1252() -> None:
    p = sample("outlook_desktop_html.eml")
    assert p.text == ("I didn\u2019t manage the breathing exercise every day & I felt guilty about it.\n\n"
                      "Thursday was the hardest day.")


def test_html_only_reply_is_readable_text_without_quote_or_script() -> None:
    p = sample("html_only_quoted.eml")
    assert p.text.startswith("I'm \"okay\" \u2013 work & family are a lot right now.")
    assert "Tuesday I cried at lunch.\nWednesday was calmer." in p.text
    assert "- walked 3 times\n- called my friend" in p.text
    assert "coping" not in p.text and "tracking" not in p.text and "wrote:" not in p.text
    assert "HtmlOnly" in p.defects


@pytest.mark.parametrize("ctype", ["text/plain; charset=utf-8", None])
def test_html_document_sent_as_plain_text_is_read_as_html(ctype: str | None) -> None:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<HTML><head><style>p {margin:0}</style></head>'
            '<body><div>Slept a little better.</div><div>Thanks,</div></body></html>')
    raw = msg(body, ctype=ctype) if ctype else msg(body).replace(b"Content-Type: text/plain; charset=utf-8\r\n", b"")
    p = parse_message(raw)
    assert p.text.startswith("Slept a little better.")
    assert "<" not in p.text and "margin" not in p.text
    assert "HtmlAsPlain" in p.defects


def test_plain_text_that_mentions_html_stays_plain() -> None:
    p = parse_message(msg("I wrote <html> on the whiteboard at work, long story.\n<b>not bold</b>"))
    assert p.text == "I wrote <html> on the whiteboard at work, long story.\n<b>not bold</b>"
    assert "HtmlAsPlain" not in p.defects


@pytest.mark.parametrize("name", ["gmail_alternative.eml", "apple_mail.eml", "android_gmail.eml", "yahoo.eml"])
def test_html_alternative_alone_gives_same_words_as_plain(name: str) -> None:
    raw = (MAIL / name).read_bytes().replace(b"Content-Type: text/plain", b"Content-Type: text/x-unused")
    assert parse_message(raw).text == sample(name).text


def test_outlook_web_divrplyfwdmsg_cuts_history() -> None:
    html = ('<html><body><div dir="ltr">Still anxious at night.</div><div><br></div>'
            '<hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr">'
            '<b>From:</b> Dr Jane Smith<br><b>Sent:</b> Monday<br></div><div>How are your nights?</div></body></html>')
    assert parse_message(msg(html, ctype="text/html; charset=utf-8")).text == "Still anxious at night."


def test_apple_mail_flowed_lines_are_joined() -> None:
    assert "\n" not in sample("apple_mail.eml").text


def test_thunderbird_inline_reply_keeps_answers_drops_questions_and_signature() -> None:
    p = sample("thunderbird_inline.eml")
    assert p.text == ("Better than last week, about six hours most nights.\n\n"
                      "Yes, every morning, except Saturday when I forgot.\n\n"
                      "The argument with my manager.")


def test_therapists_question_is_never_the_clients_words() -> None:
    for name in ("gmail_alternative.eml", "iphone.eml", "android_gmail.eml", "thunderbird_inline.eml",
                 "outlook_desktop_html.eml", "apple_mail.eml", "yahoo.eml"):
        text = sample(name).text
        assert "?" not in text, name
        assert "Dr Jane Smith" not in text, name


def test_writer_lines_starting_with_gt_are_kept() -> None:
    p = sample("own_gt_line.eml")
    assert "> 5 days since I last self-harmed" in p.text
    assert "even if today was rough >_<" in p.text
    assert p.text.endswith("Talk on Thursday.\n>_<")


def test_long_pasted_text_is_not_truncated() -> None:
    p = sample("long_pasted.eml")
    assert len(p.text) > 24_000
    assert "Day 120:" in p.text and p.text.endswith("END OF MY NOTES")
    assert "notebook entries" not in p.text


def test_calendar_invite_is_metadata_not_words() -> None:
    p = sample("calendar_invite.eml")
    assert p.text == "Can we move Thursday's session an hour later?"
    assert "text/calendar" in [a.content_type for a in p.attachments]
    assert Attachment("sketch.jpg", "image/jpeg", 57) in p.attachments
    assert "VCALENDAR" not in p.text and "private calendar notes" not in p.text


def test_headers_of_a_sample() -> None:
    p = sample("gmail_alternative.eml")
    assert p.message_id == "CAJx9ZQ8mB4cPz+gmail-0001@mail.gmail.com"
    assert p.from_addresses == ("sam.client@gmail.com",)
    assert p.date == datetime(2025, 3, 4, 8, 12, 41, tzinfo=UTC)
    assert p.authentication_results == (
        "mx.practice.example; dkim=pass header.d=gmail.com; spf=pass smtp.mailfrom=sam.client@gmail.com",)
    assert p.automatic is False and p.defects == ()
    assert sample("german_reply.eml").subject == "AW: Tagebuch f\u00fcr diese Woche"


# ------------------------------------------------------------------------------ plain-text reply rules

@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Fine.\n\nSent from my iPhone\n", "Fine."),
        ("Fine.\n\nGet Outlook for Android<https://aka.ms/ghei36>\n", "Fine."),
        ("Fine.\n\nSent from my Galaxy\n", "Fine."),
        ("Fine.\n\nVon meinem iPhone gesendet\n", "Fine."),
        ("Fine.\n-- \nJo\n07700 900000\n", "Fine."),
        ("I wrote to her with regards to the move.\nRegards are not a signature here.\n",
         "I wrote to her with regards to the move.\nRegards are not a signature here."),
        ("It was sent from my phone at 3am, sorry.\n", "It was sent from my phone at 3am, sorry."),
        ("Okay.\n\nOn Mon, Mar 3, 2025 at 9:14 PM Dr Jane Smith <\njournal@practice.example> wrote:\n\n> Q?\n",
         "Okay."),
        ("Okay.\n\nAm Mo., 3. März 2025 um 21:14 Uhr schrieb Dr Jane Smith <j@p.example>:\n> Frage?\n", "Okay."),
        ("Okay.\n\nIl giorno lun 3 mar 2025 alle ore 21:14 Dr Jane Smith <j@p.example> ha scritto:\n> D?\n",
         "Okay."),
        ("Okay.\n\nEm seg., 3 de mar. de 2025 às 21:14, Jane <j@p.example> escreveu:\n> P?\n", "Okay."),
        ("Okay.\n\nOp ma 3 mrt 2025 om 21:14 schreef Jane <j@p.example>:\n> V?\n", "Okay."),
        ("Okay.\n\nFrom: Dr Jane Smith <j@p.example>\nSent: Monday, March 3, 2025 9:14 PM\nTo: me\n"
         "Subject: prompt\n\nHow was it?\n", "Okay."),
        ("Okay.\n\n> quoted line one\n> quoted line two\n", "Okay."),
        ("On the whole it was a good week.\nOn Tuesday I went out.\n",
         "On the whole it was a good week.\nOn Tuesday I went out."),
        ("The data comes From: our database, not From: elsewhere.\n",
         "The data comes From: our database, not From: elsewhere."),
    ],
)
def test_plain_reply_rules(body: str, expected: str) -> None:
    assert parse_message(msg(body)).text == expected


def test_headerless_interleaved_quote_blocks_are_dropped_single_gt_line_kept() -> None:
    body = "My answers:\n\n> How was sleep?\n> Any nightmares?\n\nBad, two nightmares.\n> 3 nights awake\nSo tired.\n"
    assert parse_message(msg(body)).text == "My answers:\n\nBad, two nightmares.\n> 3 nights awake\nSo tired."


# ------------------------------------------------------------------------------ charsets and headers

def test_lying_latin1_label_on_utf8_bytes_is_not_mojibake() -> None:
    p = parse_message(msg("Ich f\u00fchle mich m\u00fcde \u2013 sehr.".encode(), ctype="text/plain; charset=iso-8859-1"))
    assert p.text == "Ich f\u00fchle mich m\u00fcde \u2013 sehr."
    assert "CharsetMismatch" in p.defects


def test_lying_utf8_label_on_cp1252_bytes_falls_back() -> None:
    body = "J'\u00e9tais tr\u00e8s fatigu\u00e9e cette semaine, d\u00e9sol\u00e9e pour le retard.".encode("cp1252")
    p = parse_message(msg(body, ctype="text/plain; charset=utf-8"))
    assert "fatigu\u00e9e" in p.text and "CharsetMismatch" in p.defects


def test_unknown_charset_is_decoded_by_detection() -> None:
    p = parse_message(msg("S\u00f8vn: d\u00e5rlig.".encode(), ctype="text/plain; charset=x-no-such-charset"))
    assert p.text == "S\u00f8vn: d\u00e5rlig."
    assert "UnknownCharset" in p.defects


def test_refused_codec_label_never_used() -> None:
    p = parse_message(msg(b"plain \\x41 words", ctype="text/plain; charset=unicode_escape"))
    assert p.text == "plain \\x41 words"


def test_8bit_bytes_in_headers_and_encoded_words() -> None:
    raw = ("From: J\u00fcrgen <J@Example.ORG>\r\nSubject: =?utf-8?B?V29jaGUg8J+Yig==?= \u00fcber\r\n"
           "Date: not a date\r\nContent-Type: text/plain\r\n\r\nhi\r\n").encode("utf-8")
    p = parse_message(raw)
    assert p.subject == "Woche \U0001f60a \u00fcber"
    assert p.from_addresses == ("j@example.org",)
    assert p.date is None and "InvalidDate" in p.defects and "NonASCIIHeader" in p.defects


def test_subject_is_safe_single_line() -> None:
    raw = msg("x", headers="").replace(b"Subject: week", b"Subject: =?utf-8?Q?a=0Ab=00c=E2=80=AEd?=")
    assert parse_message(raw).subject == "a b c d"


def test_message_id_synthesised_when_missing_or_garbage() -> None:
    raw = msg("x").replace(b"Message-ID: <m1@example.org>\r\n", b"")
    p = parse_message(raw)
    assert p.message_id.startswith("sha256-") and p.message_id.endswith("@journal-relay.invalid")
    assert parse_message(raw).message_id == p.message_id
    assert "MissingMessageID" in p.defects
    garbage = parse_message(msg("x").replace(b"<m1@example.org>", b"<<< \x01 >>>"))
    assert garbage.message_id.startswith("sha256-") and "InvalidMessageID" in garbage.defects


def test_date_minus_zero_zone_is_utc_aware() -> None:
    p = parse_message(msg("x").replace(b"+0000", b"-0000"))
    assert p.date is not None and p.date.utcoffset() is not None


def test_duplicate_headers_recorded_first_used() -> None:
    raw = msg("x", headers="From: Other <other@example.net>\r\nSubject: second\r\n")
    p = parse_message(raw)
    assert p.subject == "week"
    assert p.from_addresses == ("client@example.org", "other@example.net")
    assert {"DuplicateFromHeader", "DuplicateSubjectHeader"} <= set(p.defects)


# ------------------------------------------------------------------------------ automatic mail (RFC 3834)

@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied", "Auto-Submitted: auto-generated; owner-email=x@y", "Precedence: bulk",
        "Precedence: junk", "Precedence: list", "List-Id: <therapy.lists.example>",
        "List-Unsubscribe: <mailto:u@example.org>", "List-Post: <mailto:l@example.org>", "X-Autoreply: yes",
        "X-Autorespond: on", "X-Auto-Response-Suppress: DR, OOF", "X-Auto-Response-Suppress: All",
        "X-Journal-Relay-Loop: 1",
    ],
)
def test_automatic_header_signals(header: str) -> None:
    assert parse_message(msg("Out of office", headers=header + "\r\n")).automatic is True


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example", "postmaster@example.org", "noreply@example.org",
                                    "no-reply@example.org", "donotreply@example.org", "alerts-noreply@example.org"])
def test_automatic_senders(sender: str) -> None:
    raw = msg("x").replace(b"Client <client@example.org>", sender.encode())
    assert parse_message(raw).automatic is True


def test_not_automatic_for_a_person() -> None:
    assert parse_message(msg("x", headers="Auto-Submitted: no\r\nX-Auto-Response-Suppress: DR\r\n")).automatic is False
    assert parse_message(msg("x").replace(b"client@example.org", b"noreen@example.org")).automatic is False


def test_delivery_status_report_is_automatic() -> None:
    body = ("--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed\r\n--b\r\nContent-Type: message/delivery-status"
            "\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; x@y\r\nAction: failed\r\n--b--\r\n")
    p = parse_message(msg(body, ctype='multipart/report; report-type=delivery-status; boundary="b"'))
    assert p.automatic is True


# ------------------------------------------------------------------------------ hostile and broken mail

def test_attachment_content_is_never_text() -> None:
    body = ("--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: text/plain; name=notes.txt\r\n"
            "Content-Disposition: attachment; filename=notes.txt\r\n\r\nSECRET ATTACHMENT WORDS\r\n--b--\r\n")
    p = parse_message(msg(body, ctype='multipart/mixed; boundary="b"'))
    assert p.text == "see attached"
    assert p.attachments == (Attachment("notes.txt", "text/plain", 23),)


def test_deep_nesting_is_capped() -> None:
    depth = 200
    parts = "".join(f'--b{i}\r\nContent-Type: multipart/mixed; boundary="b{i + 1}"\r\n\r\n' for i in range(depth))
    body = parts + "--b200\r\nContent-Type: text/plain\r\n\r\ndeep\r\n" + "".join(f"--b{i}--\r\n" for i in range(depth, -1, -1))
    p = parse_message(msg(body, ctype='multipart/mixed; boundary="b0"'))
    assert isinstance(p, ParsedMessage)
    assert "DepthLimitExceeded" in p.defects or "ParseFailure" in p.defects


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00", b"\r\n\r\n", b"From: \xff\xfe\r\n\r\n\xff", b"Content-Type: multipart/mixed\r\n\r\nno boundary",
     b"Content-Type: text/plain; charset=\"\r\n\r\nx", b"Subject: " + b"a" * 200_000 + b"\r\n\r\n" + b"b" * 500_000,
     b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64===", b"From: a@b\x00c\r\n\r\nnul \x00 body",
     b"Content-Type: text/html\r\n\r\n<html><body>" + b"<div>" * 5000 + b"x"],
)
def test_never_raises(raw: bytes) -> None:
    p = parse_message(raw)
    assert isinstance(p, ParsedMessage) and isinstance(p.text, str) and "\x00" not in p.text


def test_nul_byte_recorded_and_removed() -> None:
    p = parse_message(msg(b"before\x00after"))
    assert p.text == "beforeafter" and "NulByte" in p.defects


def test_empty_body() -> None:
    assert parse_message(msg("")).text == ""
