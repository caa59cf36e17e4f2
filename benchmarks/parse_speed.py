"""Timing of parse_message on ~2 KB plain and HTML messages.

Run: .venv/bin/python benchmarks/parse_speed.py
"""

import timeit
from functools import partial

from journal_relay.parse import parse_message

para = "Today was a long day and I noticed my thoughts racing again before bed. "
head = ("From: Client <client@example.org>\r\nTo: journal@practice.example\r\nSubject: Re: week\r\n"
        "Message-ID: <m1@example.org>\r\nDate: Tue, 4 Mar 2025 08:00:00 +0000\r\nMIME-Version: 1.0\r\n")
plain = (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + (para * 24)[:1760]
         + "\r\n\r\nOn Mon, Mar 3, 2025 at 9:14 PM Jane <j@p.example> wrote:\r\n> How was it?\r\n").encode()
html = (head + "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>" + "".join(f"<p>{para * 3}</p>" for _ in range(8))[:1560]
        + '</p><div class="gmail_quote"><div class="gmail_attr">On Mon, Mar 3, 2025 at 9:14 PM Jane &lt;j@p.example&gt; wrote:</div>'
        '<blockquote class="gmail_quote">How was it?</blockquote></div></body></html>').encode()
for name, raw in (("plain", plain), ("html", html)):
    parse_message(raw)
    n = 2000
    best = min(timeit.repeat(partial(parse_message, raw), number=n, repeat=5)) / n
    print(f"{name}: {len(raw)} bytes, {best*1e6:.0f} us per parse_message (best of 5 x {n})")
