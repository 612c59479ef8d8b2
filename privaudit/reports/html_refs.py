"""The static check that a rendered report is self-contained: every resource the HTML would
fetch from outside itself (the headless-browser check in :mod:`privaudit.reports.pdf` is
the dynamic one)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["external_references"]

_RESOURCE_ATTRS = {"src", "srcset", "poster", "data", "background", "xlink:href"}
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)|@import\s+(['"])(.*?)\3""", re.I)


_SRCSET_URL = re.compile(r"[\s,]*(\S*)")


def _srcset_urls(value: str) -> list[str]:
    """The URLs of a ``srcset`` (HTML spec parsing: a URL may itself contain commas)."""
    urls, pos = [], 0
    while (match := _SRCSET_URL.match(value, pos)) and match.group(1):
        url, pos = match.group(1), match.end()
        if url.endswith(","):
            url = url.rstrip(",")  # no descriptors follow
        else:
            comma = value.find(",", pos)  # skip the descriptors ("2x", "480w")
            pos = len(value) if comma < 0 else comma + 1
        urls.append(url)
    return urls


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name == "style":
                self._css(value)
            elif name == "srcset":
                self.found += _srcset_urls(value)
            elif name in _RESOURCE_ATTRS or (name == "href" and tag in ("link", "image", "use")):
                self.found.append(value.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._css(data)

    def _css(self, text: str) -> None:
        self.found += [m.group(2) or m.group(4) for m in _CSS_URL.finditer(text)]


def external_references(html: str) -> list[str]:
    """Resources the page would fetch from outside itself: every ``src``/``srcset``/
    ``<link href>``/SVG ``href``/CSS ``url()``/``@import`` that is not a ``data:`` URI or a
    ``#fragment``. Hyperlinks (``<a href>``) are not fetched and are not listed.

    >>> external_references('<img src="data:image/png;base64,AA"><a href="https://x">x</a>')
    []
    >>> external_references('<link rel="stylesheet" href="https://cdn/x.css">')
    ['https://cdn/x.css']
    """
    parser = _References()
    parser.feed(html)
    parser.close()
    return [ref for ref in parser.found
            if ref and not ref.startswith("#") and not ref.lower().startswith("data:")]
