"""Making attacker-controlled text safe for where it goes: terminal, CSV and HTML."""

import html
import re

# C0/C1 controls (ANSI escapes start with ESC; NUL can cut a string short) and the
# bidirectional controls (U+061C, U+200E/F, U+202A-E, U+2066-9), which can make a reader
# see something other than what the log holds: U+202E shows `yek-live` as `evil-key`.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# how an escaped run looks in report.html: marked, so that it differs from a log's own
# text `\u202e` (inline, so pages without such characters keep their bytes)
_HTML_MARK = "<span style='color:#a8071a;background:#fde2e4'>{}</span>"


def _visible(unsafe: str) -> str:
    """A run of unsafe characters as escapes: `\\x00`, `\\x1b`, `\\u202e`."""
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                   for c in unsafe)


def for_terminal(text: str) -> str:
    """`text` with control and bidi characters shown as visible escapes."""
    return _UNSAFE.sub(lambda m: _visible(m[0]), text)


def for_html(value: object) -> str:
    """`value` as HTML text: markup characters escaped, and control and bidi characters
    shown as visible, marked escapes (as `for_terminal` shows them); other text, accents
    and CJK included, as it is."""
    return _UNSAFE.sub(lambda m: _HTML_MARK.format(_visible(m[0])),
                       html.escape(str(value), quote=True))


def for_csv(value: object) -> object:
    """A CSV cell that a spreadsheet will not run as a formula (a leading ' added)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
