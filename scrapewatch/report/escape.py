"""Making attacker-controlled text safe for where it goes: terminal and CSV."""

import re

# C0/C1 controls (ANSI escapes start with ESC) and bidirectional overrides, which can
# make a terminal show something other than what the log holds.
_UNSAFE_TERMINAL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def for_terminal(text: str) -> str:
    """`text` with control and bidi characters shown as visible escapes."""
    return _UNSAFE_TERMINAL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256
                                else f"\\u{ord(m[0]):04x}", text)


def for_csv(value: object) -> object:
    """A CSV cell that a spreadsheet will not run as a formula (a leading ' added)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
