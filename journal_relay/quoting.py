"""Reply extraction for plain text: keep the writer's own words, drop quoted history and signatures.

Pure functions over ``str``; no I/O, no logging, imports nothing from the rest of the package.

Quoted history is decided by structure, never by a single ">" line:

* a quote header ("On ... wrote:", "Am ... schrieb", an Outlook "From:/Sent:" block,
  "-----Original Message-----", ...) ends the writer's text when plain text follows it; when
  ">"-quoted lines follow it, the ">" lines are dropped and the writer's interleaved lines are kept
  (inline replies);
* a run of two or more ">" lines (blank lines inside the run allowed) is quoted history wherever it is;
* a single ">" line with no quote header above it is the writer's own text (e.g. "> 5 days since...").

Signatures: the "-- " delimiter (when what follows is short) and mobile "Sent from my ..." lines at the end.
"""

from __future__ import annotations

import re

__all__ = ["extract_reply"]

# Longest line considered as (part of) a quote header; longer lines are prose.
_MAX_HEADER_LINE = 400
# A quote header may be wrapped over this many lines (e.g. "On ..., Name <\naddr> wrote:").
_HEADER_SPAN = 4

_WROTE_VERBS = (
    r"wrote|writes|has written|schrieb|hat geschrieben|a\s+écrit|a\s+ecrit|escribió|escribio|ha\s+escrito|"
    r"ha\s+scritto|scrisse|escreveu|schreef|heeft geschreven|skrev|kirjoitti|napisał\(a\)|napisała|napisał|"
    r"napsal\(a\)|napsal|написал\(а\)|написала|написал|пишет|írta|yazdı|a\s+scris|έγραψε|kirjutas|rašė|"
    r"rakstīja|написа|napísal|је\s+написао|写道|寫道|のメッセージ|님이\s+작성"
)
# "On ... wrote:" and its translations (optionally wrapped in dashes, as Zoho does).
_WROTE_RE = re.compile(r"(?:^|\s|[>)\]\"'])(?:" + _WROTE_VERBS + r")\s*:?\s*-*\s*$", re.IGNORECASE)
# How such a header starts: a preposition/article in some language, a date, or a weekday ("strong"),
# or just a short word and a number, like "pe 20." or "ср, 30" ("weak", used when no strong start is near).
_HEADER_START_RE = re.compile(
    r"^\s*-*\s*(?:(?:on|am|le|el|il|in\s+data|op|em|w\s+dniu|dnia|den|dne|d'|el\s+día)\b|\d|"
    r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\b)",
    re.IGNORECASE,
)
_WEAK_HEADER_START_RE = re.compile(r"^\s*[^\W\d_]{1,4}\.?,?\s+\d")
_HAS_AT = re.compile(r"@|&lt;|mailto:", re.IGNORECASE)
_HAS_TIME = re.compile(r"\b\d{1,2}[:.h]\d{2}\b")
_HAS_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
# "2017-11-24 16:32 GMT+01:00 Name <addr>:" - a date line ending in an address and a colon.
_ADDR_COLON_RE = re.compile(r"(?:@[^<>\s]*>|@[^()\s]*\)|^\s*>|<)\s*:\s*$")

_ORIGINAL_MESSAGE_RE = re.compile(
    r"^\s*[-_=*]{2,}\s*(?:original\s+message|forwarded\s+message|originalnachricht|ursprüngliche\s+nachricht|"
    r"weitergeleitete\s+nachricht|message\s+d'origine|message\s+transféré|message\s+original|"
    r"mensaje\s+original|mensaje\s+reenviado|messaggio\s+originale|messaggio\s+inoltrato|mensagem\s+original|"
    r"mensagem\s+encaminhada|oorspronkelijk\s+bericht|doorgestuurd\s+bericht|originalmeddelande|"
    r"vidarebefordrat\s+meddelande|oprindelig\s+(?:besked|meddelelse)|opprinnelig\s+melding|"
    r"alkuperäinen\s+viesti|wiadomość\s+oryginalna|původní\s+zpráva|исходное\s+сообщение|"
    r"пересылаемое\s+сообщение|eredeti\s+üzenet|orijinal\s+mesaj)\s*[-_=*]{2,}\s*$",
    re.IGNORECASE,
)
_DASH_PHRASE_RE = re.compile(r"^\s*-{2,}\s*[^\W\d_][^-]{2,50}?\s*-{2,}\s*$")
_BEGIN_FORWARDED_RE = re.compile(r"^\s*(?:begin forwarded message|anfang der weitergeleiteten nachricht|"
                                 r"début du message réexpédié|inicio del mensaje reenviado)\s*:\s*$",
                                 re.IGNORECASE)
_FIELD_RE = re.compile(r"^\s*\*?[^\W\d_][\w .'-]{0,24}?\s?\*?\s*:")

_FROM_FIELD_RE = re.compile(
    r"^\s*\*?\s*(?:from|von|de|van|da|od|fra|från|från|lähettäjä|feladó|от|kimden|remitente|dari|"
    r"发件人|發件人|差出人|보낸\s*사람)\s*\*?\s*:",
    re.IGNORECASE,
)
_OTHER_FIELD_RE = re.compile(
    r"^\s*\*?\s*(?:sent|date|to|subject|cc|gesendet|datum|an|betreff|envoyé(?:\s+le)?|à|objet|"
    r"verzonden|aan|onderwerp|inviato|a|oggetto|data|enviado(?:\s+el)?|para|assunto|asunto|fecha|"
    r"wysłane|do|temat|sendt|til|emne|dato|skickat|till|ämne|lähetetty|vastaanottaja|aihe|"
    r"отправлено|кому|тема|дата|gönderildi|kime|konu|tarih|elküldve|címzett|tárgy|"
    r"发送时间|收件人|主题|送信日時|宛先|件名)\s*\*?\s*:",
    re.IGNORECASE,
)

_SIG_DELIM_RE = re.compile(r"^--[ \t]?$")
_MOBILE_SIG_RE = re.compile(
    r"^\s*\[?\s*(?:"
    r"sent\s+from\s+my\s+[\w'’ -]{1,40}[.!]?"
    r"|sent\s+(?:from|with|via|using)\s+(?:outlook|yahoo\s+mail|aol|gmail|mail\s+for\s+windows|"
    r"proton\s*mail|typeapp|blue\s*mail|spark|samsung|the\s+[\w -]{1,30}\s+app|[\w-]+\s+for\s+(?:ios|android))"
    r"[\w .'’-]{0,40}"
    r"|get\s+outlook\s+for\s+(?:ios|android)"
    r"|envoyé\s+(?:de|depuis)\s+mon\s+[\w'’ -]{1,40}"
    r"|envoyé\s+(?:à\s+partir\s+de|depuis)\s+outlook\s+pour\s+(?:ios|android)"
    r"|von\s+meinem\s+[\w'’ -]{1,40}\s+gesendet"
    r"|gesendet\s+(?:von|mit)\s+(?:meinem\s+)?[\w'’ -]{1,40}"
    r"|enviado\s+(?:desde|do|de)\s+(?:mi|meu|o\s+meu)\s+[\w'’ -]{1,40}"
    r"|obtener\s+outlook\s+para\s+(?:ios|android)"
    r"|inviato\s+da\s+(?:il\s+mio\s+)?[\w'’ -]{1,40}"
    r"|verzonden\s+(?:vanaf|met)\s+(?:mijn\s+)?[\w'’ -]{1,40}"
    r"|skickat\s+från\s+min\s+[\w'’ -]{1,40}"
    r"|sendt\s+fra\s+min\s+[\w'’ -]{1,40}"
    r"|wysłane\s+z\s+[\w'’ -]{1,40}"
    r"|отправлено\s+с\s+[\w'’ -]{1,40}"
    r")\s*\]?\s*(?:<[^<>\s]{1,300}>|\(\s*[^()\s]{1,300}\s*\))?\s*$",
    re.IGNORECASE,
)
_BLANK_RUN = re.compile(r"\n{3,}")
_SEPARATOR_RE = re.compile(r"^[\s_\-=—–~*]*$")
_STRICT_QUOTE_RE = re.compile(r"^[ \t]{0,3}>(?:[ \t>]|$)")
_LOOSE_QUOTE_RE = re.compile(r"^[ \t]{0,3}>")
_WRAPPED_ADDR_END = re.compile(r"^\s*>\s*:\s*$")  # "Name <addr\n>:" - the end of a wrapped quote header
_UNDERSCORES_RE = re.compile(r"^_{2,}\s*$")  # mailing-list footer rule (Mailman) or Outlook separator


def _is_wrote_header(lines: list[str], i: int, quoted_follows: bool) -> int:
    """If lines[j..i] (j >= i - _HEADER_SPAN + 1) form an "On ... wrote:" style header, return j, else -1."""
    end = lines[i]
    if len(end) > _MAX_HEADER_LINE:
        return -1
    stripped = end.rstrip()
    if not stripped.endswith(":") and _WROTE_RE.search(stripped) is None:
        return -1
    # The header starts at the nearest line (going up) that looks like a strong header start, else weak.
    strong = weak = -1
    for j in range(i, max(-1, i - _HEADER_SPAN), -1):
        line = lines[j]
        if not line.strip() or len(line) > _MAX_HEADER_LINE or (j < i and _LOOSE_QUOTE_RE.match(line)):
            break
        if _HEADER_START_RE.match(line):
            strong = j
            break
        if weak < 0 and _WEAK_HEADER_START_RE.match(line):
            weak = j
    j = strong if strong >= 0 else weak
    if j < 0:
        return -1
    joined = " ".join(x.strip() for x in lines[j:i + 1])
    wrote = _WROTE_RE.search(joined) is not None
    addr_colon = not wrote and _ADDR_COLON_RE.search(stripped) is not None
    if not (wrote or addr_colon):
        return -1
    has_at = _HAS_AT.search(joined) is not None
    has_time = _HAS_TIME.search(joined) is not None
    if addr_colon:
        ok = has_at and has_time
    elif quoted_follows:
        ok = has_at or has_time or _HAS_YEAR.search(joined) is not None
    else:
        ok = has_at or has_time
    return j if ok else -1


def _is_outlook_block(lines: list[str], i: int) -> bool:
    """A "From: ..." line followed closely by other header fields (Sent:/To:/Subject:/...)."""
    if len(lines[i]) > _MAX_HEADER_LINE or not _FROM_FIELD_RE.match(lines[i]):
        return False
    for k in range(i + 1, min(len(lines), i + 5)):
        if _OTHER_FIELD_RE.match(lines[k]):
            return True
    return False


def _next_nonblank(lines: list[str], i: int) -> int:
    n = len(lines)
    while i < n and not lines[i].strip():
        i += 1
    return i


def _is_quote(lines: list[str], i: int) -> bool:
    return i < len(lines) and _STRICT_QUOTE_RE.match(lines[i]) is not None


def _find_header(lines: list[str], quoted: list[bool]) -> tuple[int, int]:
    """First quote header outside quoted lines: (start, end) line indices, or (-1, -1)."""
    n = len(lines)
    for i in range(n):
        line = lines[i]
        if quoted[i] or not line or len(line) > _MAX_HEADER_LINE:
            continue
        if _ORIGINAL_MESSAGE_RE.match(line) or _BEGIN_FORWARDED_RE.match(line):
            return i, i
        if _DASH_PHRASE_RE.match(line):
            k = _next_nonblank(lines, i + 1)
            if k < n and _FIELD_RE.match(lines[k]):
                return i, i
        if _is_outlook_block(lines, i):
            j = i
            while j > 0 and not quoted[j - 1] and _FIELD_RE.match(lines[j - 1]) and len(lines[j - 1]) < 200:
                j -= 1
            return j, i
        k = _next_nonblank(lines, i + 1)
        start = _is_wrote_header(lines, i, k < n and quoted[k])
        if start >= 0:
            return start, i
    return -1, -1


def _classify_quotes(lines: list[str]) -> list[bool]:
    quoted = [_STRICT_QUOTE_RE.match(x) is not None and not _WRAPPED_ADDR_END.match(x) for x in lines]
    # ">word" without a space counts as quoted only next to properly quoted lines (keeps ">_<" as text).
    for i, line in enumerate(lines):
        if not quoted[i] and _LOOSE_QUOTE_RE.match(line) and not _WRAPPED_ADDR_END.match(line):
            if (i > 0 and quoted[i - 1]) or (i + 1 < len(lines) and quoted[i + 1]):
                quoted[i] = True
    return quoted


def _is_continuation(prev_quoted_line: str, line: str) -> bool:
    """An unquoted line glued under a quoted one that is really the quoted line wrapped by a client."""
    s = line.lstrip()
    if not s:
        return False
    return s[0].islower() or len(prev_quoted_line) >= 70


def _drop_quote_blocks(lines: list[str], quoted: list[bool], after_header: bool) -> list[str]:
    """Drop runs of ">" lines that are quoted history; keep the writer's lines between them.

    A run is quoted history when it has two or more ">" lines, or when it comes after a quote header.
    Unquoted lines glued under a quoted line that look like its wrapped continuation are dropped too.
    """
    out: list[str] = []
    n = len(lines)
    i = 0
    while i < n:
        if not quoted[i]:
            out.append(lines[i])
            i += 1
            continue
        # A run of quoted lines, allowing blank lines and wrapped continuations inside it.
        j = i
        count = 0
        last_q = i
        while j < n:
            if quoted[j]:
                count += 1
                last_q = j
                j += 1
            elif not lines[j].strip():
                k = _next_nonblank(lines, j)
                if k < n and quoted[k]:
                    j = k
                else:
                    break
            elif j == last_q + 1 and _is_continuation(lines[last_q], lines[j]):
                j += 1
                # a continuation line belongs to the run; keep scanning
                last_q = j - 1
            else:
                break
        content = any(lines[x].strip(" \t>") for x in range(i, last_q + 1))
        if count >= 2 or after_header or not content:
            i = last_q + 1
        else:
            out.extend(lines[i:last_q + 1])
            i = last_q + 1
    return out


def _strip_signature(lines: list[str]) -> list[str]:
    n = len(lines)
    # "-- " delimiter: everything after it, when that is short (a signature, not a pasted document).
    for i in range(n):
        if _SIG_DELIM_RE.match(lines[i]) or _UNDERSCORES_RE.match(lines[i]):
            rest = [x for x in lines[i + 1:] if x.strip()]
            if len(rest) <= 20 and sum(len(x) for x in rest) <= 1500:
                lines = lines[:i]
                break
    # Mobile "Sent from my iPhone" style lines near the end.
    n = len(lines)
    nonblank_after = 0
    for i in range(n - 1, -1, -1):
        line = lines[i]
        if not line.strip():
            continue
        if len(line) <= 400 and _MOBILE_SIG_RE.match(line):
            lines = lines[:i]
            break
        nonblank_after += 1
        if nonblank_after > 3:
            break
    return lines


def _trim(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and _SEPARATOR_RE.match(lines[end - 1]):
        end -= 1
    return lines[start:end]


def extract_reply(text: str) -> str:
    """The writer's own words from a plain-text reply (newlines already normalised to "\\n")."""
    lines = text.split("\n")
    quoted = _classify_quotes(lines)
    start, end = _find_header(lines, quoted)
    if start >= 0:
        head, tail = lines[:start], lines[end + 1:]
        head_q = quoted[:start]
        k = _next_nonblank(tail, 0)
        tail_q = quoted[end + 1:]
        if k < len(tail) and tail_q[k]:
            # Inline / bottom-posted reply: drop the quoted lines, keep the writer's lines between them.
            rest = _drop_quote_blocks(tail, tail_q, after_header=True)
            rest = extract_reply("\n".join(rest)).split("\n") if any(x.strip() for x in rest) else []
            kept = _drop_quote_blocks(head, head_q, after_header=False)
            kept = _strip_signature(_trim(kept))
            if rest and any(x.strip() for x in rest):
                kept = kept + [""] + rest
        else:
            kept = _strip_signature(_trim(_drop_quote_blocks(head, head_q, after_header=False)))
    else:
        kept = _strip_signature(_trim(_drop_quote_blocks(lines, quoted, after_header=False)))
    kept = _trim(kept)
    return _BLANK_RUN.sub("\n\n", "\n".join(x.rstrip() for x in kept)).strip()
