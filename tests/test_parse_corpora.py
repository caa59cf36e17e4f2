"""Parse stage against public corpora, read in place (never copied): ../shared/mail-samples and CPython's.

Expected results come from each upstream project's own tests (see shared/mail-samples/SOURCES.md).
Each group skips cleanly when its folder is absent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from journal_relay.parse import ParsedMessage, parse_message

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "mail-samples"
TALON = SAMPLES / "mailgun-talon"
FLANKER = SAMPLES / "mailgun-flanker"
CRISP = SAMPLES / "crisp-email-reply-parser"
GITHUB = SAMPLES / "github-email_reply_parser"


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _need(folder: Path) -> None:
    if not folder.is_dir():
        pytest.skip(f"{folder.name} corpus not present")


def _wrap(body: bytes) -> bytes:
    """A bare body as a minimal RFC 5322 message."""
    return (b"From: Client <client@example.org>\r\nSubject: Re: x\r\nMessage-ID: <c@example.org>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body)


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


# ------------------------------------------------------------------------------ mailgun/talon

STANDARD = _files(TALON / "standard_replies", "*.eml")


@pytest.mark.parametrize("path", STANDARD, ids=_ids(STANDARD))
def test_talon_standard_replies(path: Path) -> None:
    text = parse_message(path.read_bytes()).text
    reply_file = path.with_name(path.stem + "_reply_text")
    if reply_file.exists():
        # Upstream keeps the signature ("Sent from my iPhone", "-- \nxxx\nSent with Sparrow"); our contract
        # drops signatures, so the expected words are the reply text up to its signature.
        expected = re.split(r"\n(?:-- ?\n|Sent from my )", reply_file.read_text())[0].strip()
    else:
        expected = "Hello"
    assert text == expected


HTML_REPLIES = _files(TALON / "html_replies", "*.html")


@pytest.mark.parametrize("path", HTML_REPLIES, ids=_ids(HTML_REPLIES))
def test_talon_html_replies(path: Path) -> None:
    raw = (b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           + path.read_bytes())
    assert _squash(parse_message(raw).text) == _squash("Hi. I am fine.\n\nThanks,\nAlex")


# ------------------------------------------------------------------------------ crisp / github bare bodies

COMMON_FIRST_FRAGMENT = (
    "Fusce bibendum, quam hendrerit sagittis tempor, dui turpis tempus erat, pharetra sodales ante sem sit amet metus.\n"
    "Nulla malesuada, orci non vulputate lobortis, massa felis pharetra ex, convallis consectetur ex libero eget ante.\n"
    "Nam vel turpis posuere, rhoncus ligula in, venenatis orci. Duis interdum venenatis ex a rutrum.\n"
    "Duis ut libero eu lectus consequat consequat ut vel lorem. Vestibulum convallis lectus urna,\n"
    "et mollis ligula rutrum quis. Fusce sed odio id arcu varius aliquet nec nec nibh."
)
CRISP_COMMON = [
    "email_7", "email_8", "email_9", "email_10", "email_11", "email_12", "email_13", "email_14", "email_15",
    "email_16", "email_17", "email_18", "email_22", "email_23", "email_24", "email_25", "email_26",
    "email_portuguese", "email_german", "email_german_2", "email_german_3", "email_german_outlook",
    "email_norwegian_gmail", "email_finnish", "email_italian", "email_russian", "email_outlook_split_line_from",
    "email_gmail_split_line_from", "email_ios_outlook_fr", "email_ios_outlook", "email_msn", "email_fr_multiline",
    "email_french_2", "email_en_multiline_2", "email_original_message", "email_original_message_2",
    "email_danish_dash_separator", "email_french_dash_separator", "email_tricky_5_mixed_languages",
    "email_tricky_10_special_chars_in_name", "email_tricky_12_no_space_after_header",
    "email_tricky_14_long_quote_header", "email_tricky_15_original_message_variations",
]
# (fixture, regex the client's text must match, regex it must not match)
CRISP_CASES = [
    ("email_1", r"^Hi folks\n\nWhat is the best way.*-Abhishek Kona$", r"mailing list"),
    ("email_3", r"^Oh thanks\.\n\nHaving the function would be great\.\n\n-Abhishek Kona$", r">"),
    ("email_4", r"^Awesome", r"Loader"),
    ("email_5", r"This is a paragraph that talks about a bunch of stuff", None),
    ("email_6", r"^I get", r"Was this"),
    ("email_2", r"^Hi,\n\nYou can list", r"Hi folks|^On "),
    ("email_zoho", r"^What is the best way to clear a Riak bucket of all key, values after\nrunning a test\?$", None),
    ("email_with_regards", r"^Hi,\n\nI still have the same problem\.\.\.\.\n\nCan you help\?", None),
    ("email_sent_from", r"^Hi it can happen to any texts you type, as long as you type in between words or "
                        r"paragraphs\.$", None),
    ("email_emoji", r"^\U0001f389\n\n\u2014\nJohn Doe\nCEO at Pandaland\n\n@pandaland$", None),
    ("email_not_a_signature", r"Sincerely,\nSuper Domain Name Manager$", None),
    ("email_not_a_signature_2", r"-- first point.*I hope you can check it\n\nThanks!$", None),
    ("email_one_is_not_on", r"One outstanding question", r"On Oct 1, 2012"),
    ("email_reply_header", r"On the other hand, it could happen TWICE!\n\nStranger$", r"mrmister"),
    ("correct_sig", r"^this is an email with a correct -- signature\.$", r"rick"),
    ("sig_no_empty_line", r"^this is an email with a signature with no empty line above\.$", r"rick"),
    ("email_tricky_1_on_false_positive", r"On a separate note, I wanted to mention that performance is great\.$", None),
    ("email_tricky_2_url_with_wrote", r"Check out this article.*https://example\.com.*Best regards,\nJohn$", None),
    ("email_tricky_3_code_block", r"function sendEmail.*shouldn't be detected as actual signatures\.$", None),
    ("email_tricky_4_from_in_body", r"This is the actual message content\.$", None),
    ("email_tricky_6_regards_in_sentence", r"with regards to the payment.*should be visible\.$", None),
    ("email_tricky_7_multiple_dashes", r"Key Points.*just separators in my content\.$", None),
    ("email_tricky_8_sent_from_in_content", r"sent from my iPhone app.*sent from the main server\.$", None),
    ("email_tricky_9_nested_quotes", r"^I agree with the points below\.$", None),
    ("email_tricky_11_double_signature", r"^Thanks for your help!\n\nBest regards,\nJohn$", None),
    ("email_tricky_13_timestamp_variations", r"different timestamp formats.*not quote headers\.$", None),
    ("email_tricky_16_unicode_signatures", r"^Thanks for the update!", None),
    ("email_tricky_17_forward_header", r"^See the forwarded message below\.$", r"forwarded content"),
    ("email_tricky_18_inline_reply", r"^I think option A is great\.\n\nOption B has some drawbacks\.\n\n"
                                     r"Option C is not suitable for our use case\.$", r"\?"),
    ("email_tricky_19_quote_without_header", r"^I wanted to respond to your points:\n\nMy response to the quoted "
                                             r"text above\.\n\nAnd my final thoughts\.$", r"quoted section"),
    ("email_tricky_20_html_entities", r"&gt; 100 and &lt; 200", r"Previous message"),
]


@pytest.mark.parametrize("name", CRISP_COMMON)
def test_crisp_common_first_fragment(name: str) -> None:
    _need(CRISP)
    text = parse_message(_wrap((CRISP / f"{name}.txt").read_bytes())).text
    assert text == COMMON_FIRST_FRAGMENT


@pytest.mark.parametrize(("name", "must", "must_not"), CRISP_CASES, ids=[c[0] for c in CRISP_CASES])
def test_crisp_cases(name: str, must: str, must_not: str | None) -> None:
    _need(CRISP)
    text = parse_message(_wrap((CRISP / f"{name}.txt").read_bytes())).text
    assert re.search(must, text, re.S), text[:500]
    if must_not:
        assert not re.search(must_not, text, re.M), text[:500]


GITHUB_CASES = [
    ("email_1_1", r"^Hi folks.*-Abhishek Kona$"),
    ("email_1_2", r"^Hi,\n\nYou can list the keys.*would do it\."),
    ("email_1_3", r"^Oh thanks\.\n\nHaving the function would be great\.\n\n-Abhishek Kona$"),
    ("email_2_1", r"^Outlook with a reply$"),
    ("email_BlackBerry", r"^Here is another email$"),
    ("email_iPhone", r"^Here is another email$"),
    ("email_multi_word_sent_from_my_mobile_device", r"^Here is another email$"),
    ("email_sent_from_my_not_signature", r"Sent from my desk, is much easier then my mobile phone\.$"),
    ("email_sig_delimiter_in_middle_of_line", r"this is not a signature\.\n\nkthxbai$"),
    ("greedy_on", r"^On your remote host you can run:.*the tunnel is not working\.$"),
    ("pathological", r"^I think you're onto something\..*get back to a computer\.$"),
    ("email_long_quote", r"^Hi folks.*I am currently using the Java HTTP API\.\n\n-Abhishek Kona$"),
]


@pytest.mark.parametrize(("name", "must"), GITHUB_CASES, ids=[c[0] for c in GITHUB_CASES])
def test_github_cases(name: str, must: str) -> None:
    _need(GITHUB)
    text = parse_message(_wrap((GITHUB / f"{name}.txt").read_bytes())).text
    assert re.search(must, text, re.S), text[:500]


# ------------------------------------------------------------------------------ mailgun/flanker robustness

FLANKER_ALL = _files(FLANKER, "**/*.eml")
AUTOMATIC = [p for p in FLANKER_ALL if p.parent.name in ("bounce", "complaints")]


@pytest.mark.parametrize("path", FLANKER_ALL, ids=[str(p.relative_to(FLANKER)) for p in FLANKER_ALL])
def test_flanker_never_raises(path: Path) -> None:
    p = parse_message(path.read_bytes())
    assert isinstance(p, ParsedMessage) and isinstance(p.text, str)


@pytest.mark.parametrize("path", AUTOMATIC, ids=[str(p.relative_to(FLANKER)) for p in AUTOMATIC])
def test_flanker_bounces_and_complaints_are_automatic(path: Path) -> None:
    assert parse_message(path.read_bytes()).automatic is True


def test_corpora_present_or_skipped() -> None:
    if not SAMPLES.is_dir():
        pytest.skip("shared/mail-samples not present")
    assert STANDARD and HTML_REPLIES and FLANKER_ALL and AUTOMATIC


# ------------------------------------------------------------------------------ CPython's email test data

def _cpython_files() -> list[Path]:
    try:
        import test  # noqa: PLC0415 - the stdlib's test package, absent on some builds
    except ImportError:
        return []
    data = Path(os.path.dirname(test.__file__)) / "test_email" / "data"
    if not data.is_dir():
        return []
    return sorted(data.glob("msg_*.txt")) + sorted(data.glob("mailbox_01.mbox"))


CPYTHON = _cpython_files()


@pytest.mark.parametrize("path", CPYTHON, ids=_ids(CPYTHON))
def test_cpython_email_corpus_never_raises(path: Path) -> None:
    p = parse_message(path.read_bytes())
    assert isinstance(p, ParsedMessage) and p.message_id


def test_cpython_corpus_present_or_skipped() -> None:
    if not CPYTHON:
        pytest.skip("CPython test package (test.test_email data) not installed")
    assert len(CPYTHON) >= 40
