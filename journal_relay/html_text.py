"""HTML mail bodies -> readable plain text, without the quoted history the mail client marked up.

Pure; imports nothing from the rest of the package. Uses lxml's forgiving libxml2 HTML parser.

Quoted history that the client marks structurally is removed here:
* dropped where it stands (the writer's text around it is kept, for inline replies):
  ``blockquote type=cite`` (Apple Mail, Thunderbird, Fastmail, ...), ``gmail_quote`` blocks, Yahoo's
  ``yahoo_quoted``, Proton's ``protonmail_quote``, Zoho's ``zmail_extra``, Thunderbird's
  ``moz-cite-prefix``; each is replaced by two ">" marker lines so that the plain-text reply
  extraction that runs afterwards sees the structure of an inline reply;
* everything from the marker onwards is cut: Outlook's ``divRplyFwdMsg`` / ``appendonsend``, Outlook for
  Mac's ``OLK_SRC_BODY_SECTION``, Hotmail's ``hr#stopSpelling``, and the Outlook desktop header block
  (a ``border-top`` styled block whose text starts with "From:" or a translation of it).
Signature blocks marked as such (``gmail_signature``, ``moz-signature``) are dropped.
"""

from __future__ import annotations

import re

try:
    from lxml import etree, html
except ImportError:  # pragma: no cover - lxml missing: degrade to tag stripping, never crash
    etree = html = None  # type: ignore[assignment]

__all__ = ["html_to_text"]

_DROP_TAGS = ("script", "style", "head", "title", "noscript", "template", "object", "embed", "iframe",
              "svg", "math", "select", "button", "applet", "frameset", "audio", "video", "canvas")
_PARAGRAPH_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "pre",
                             "blockquote", "address", "figure", "fieldset", "form"})
_LINE_TAGS = frozenset({"div", "li", "tr", "dd", "dt", "section", "article", "header", "footer", "nav", "aside",
                        "main", "caption", "center", "hr", "tbody", "thead", "tfoot", "figcaption", "details",
                        "summary", "legend", "body", "html"})
_CELL_TAGS = frozenset({"td", "th"})

_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_quote_container", "yahoo_quoted", "protonmail_quote",
                            "zmail_extra", "moz-cite-prefix", "gmail_extra_quote"})
_SIGNATURE_CLASSES = frozenset({"gmail_signature", "moz-signature"})
_CUT_IDS = frozenset({"divrplyfwdmsg", "appendonsend", "olk_src_body_section", "stopspelling",
                      "mail-editor-reference-message-container"})
_FROM_START = re.compile(
    r"^\s*(?:from|von|de|van|da|od|fra|från|lähettäjä|feladó|от|kimden|remitente|发件人|差出人)\s*:",
    re.IGNORECASE,
)
_WS = re.compile(r"[ \t\r\n\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ue000]")
_BLANKS = re.compile(r"\n{3,}")
_MARKER = "\ue000"  # stands for dropped quoted history until rendering is done
_MARKER_TEXT = "\n\n>\n>\n\n"


def _classes(el: etree._Element) -> set[str]:
    c = el.get("class")
    return set(c.lower().split()) if c else set()


def _cut_from(el: etree._Element) -> None:
    """Remove el, everything after it in document order (its following siblings and its ancestors')."""
    node = el
    while node is not None:
        parent = node.getparent()
        if parent is None:
            break
        nxt = node.getnext()
        while nxt is not None:
            after = nxt.getnext()
            parent.remove(nxt)
            nxt = after
        node.tail = None
        node = parent
    parent = el.getparent()
    if parent is not None:
        parent.remove(el)


def _replace_with_marker(el: etree._Element) -> None:
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail or ""
    prev = el.getprevious()
    text = _MARKER + tail
    if prev is not None:
        prev.tail = (prev.tail or "") + text
    else:
        parent.text = (parent.text or "") + text
    parent.remove(el)


def _remove_keep_tail(el: etree._Element) -> None:
    parent = el.getparent()
    if parent is None:
        return
    el.drop_tree()


def _prune(root: etree._Element) -> None:
    for el in list(root.iter(*_DROP_TAGS)):
        _remove_keep_tail(el)
    cut: etree._Element | None = None
    quotes: list[etree._Element] = []
    sigs: list[etree._Element] = []
    for el in root.iter(etree.Element):
        tag = el.tag if isinstance(el.tag, str) else ""
        el_id = (el.get("id") or "").lower()
        if el_id in _CUT_IDS:
            cut = el
            break
        if tag in ("div", "p") and "border-top" in (el.get("style") or "").lower().replace(" ", ""):
            head = "".join(el.itertext())[:200]
            if _FROM_START.match(head):
                cut = el
                break
        classes = _classes(el) if el.get("class") else set()
        if tag == "blockquote" and (
            (el.get("type") or "").lower() == "cite" or any("quote" in c for c in classes)
        ):
            quotes.append(el)
        elif classes & _QUOTE_CLASSES or el_id.startswith("yahoo_quoted"):
            quotes.append(el)
        elif classes & _SIGNATURE_CLASSES or (el.get("data-smartmail") or "") == "gmail_signature":
            sigs.append(el)
    if cut is not None:
        _cut_from(cut)
    sig_ids = {id(x) for x in sigs}
    for el in quotes + sigs:
        # Skip elements already detached with an ancestor removed above.
        if el.getparent() is None:
            continue
        anc = el.getparent()
        while anc is not None and anc is not root:
            anc = anc.getparent()
        if anc is None:
            continue
        if id(el) in sig_ids:
            _remove_keep_tail(el)
        else:
            _replace_with_marker(el)


def _is_line_paragraph(el: etree._Element) -> bool:
    """Outlook/Word writes every line as <p class=MsoNormal> with zero margins: a line, not a paragraph."""
    c = el.get("class")
    return c is not None and "msonormal" in c.lower()


def _render(root: etree._Element) -> str:
    out: list[str] = []
    need = 0  # newlines owed before the next text
    pre_depth = 0

    def emit(s: str) -> None:
        nonlocal need
        if not s:
            return
        if pre_depth == 0:
            s = _WS.sub(" ", s)
            if s == " " and (not out or out[-1].endswith("\n")):
                return
        if need:
            if out:
                out.append("\n" * need)
            need = 0
        out.append(s)

    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if event == "start":
            if tag == "br":
                out.append("\n")
                need = 0
            elif tag in _PARAGRAPH_TAGS:
                need = max(need, 1 if _is_line_paragraph(el) else 2)
            elif tag in _LINE_TAGS:
                need = max(need, 1)
            elif tag in _CELL_TAGS:
                emit(" ")
            if tag == "pre":
                pre_depth += 1
            if tag == "li":
                emit("- ")
            if el.text and tag:
                emit(el.text)
        else:
            if tag == "pre":
                pre_depth -= 1
            if tag in _PARAGRAPH_TAGS:
                need = max(need, 1 if _is_line_paragraph(el) else 2)
            elif tag in _LINE_TAGS:
                need = max(need, 1)
            if el.tail:
                emit(el.tail)
    return "".join(out)


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body, structural quoted history removed. Raises nothing for any str."""
    markup = _CONTROL.sub("", markup)
    if not markup.strip():
        return ""
    if etree is None:  # pragma: no cover
        import html as stdlib_html

        text = re.sub(r"(?is)<(script|style|head)\b.*?</\1\s*>|<[^>]*>", " ", markup)
        return _BLANKS.sub("\n\n", stdlib_html.unescape(text)).strip()
    try:
        parser = html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True,
                                 no_network=True, recover=True, default_doctype=False)
        root = html.document_fromstring(markup.encode("utf-8", "replace"), parser=parser)
    except (etree.ParserError, ValueError, etree.XMLSyntaxError):
        return ""
    if root is None:
        return ""
    body = root.find("body")
    if body is None:
        body = root
    _prune(body)
    text = _render(body)
    text = _INVISIBLE.sub("", text).replace(_MARKER, _MARKER_TEXT)
    lines = [line.strip() for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip("\n")
