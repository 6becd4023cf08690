"""Custom formats: an nginx `log_format`, an Apache `LogFormat`, or a regex, compiled
into one line regex (see `regex.LineRegex`).

A variable or directive that fills a request field becomes a named group; any other
becomes an anonymous one. Each matches up to the first character of the literal text
after it (inside quotes, backslash escapes are allowed), so the log's own separators
decide where a value ends.
"""

from __future__ import annotations

import re

from scrapewatch.errors import ConfigError
from scrapewatch.reading.formats.regex import LineRegex

NGINX_VARIABLES = {
    "remote_addr": "client", "realip_remote_addr": "client", "remote_user": "user",
    "time_local": "time", "time_iso8601": "time", "msec": "time",
    "request": "request", "request_method": "method", "request_uri": "path",
    "uri": "path", "document_uri": "path", "args": "query", "query_string": "query",
    "status": "status", "body_bytes_sent": "bytes", "bytes_sent": "bytes",
    "http_referer": "referer", "http_user_agent": "user_agent", "http_x_api_key": "api_key",
    "http_x_forwarded_for": "xff",
}
_NGINX_TOKEN = re.compile(r"\$(?:\{(\w+)\}|(\w+))")

# Apache directive letter (with its {argument}, lower case) -> request field.
APACHE_DIRECTIVES = {
    "h": "client", "a": "client", "u": "user", "t": "time", "r": "request", "m": "method",
    "U": "path", "q": "query", "s": "status", "b": "bytes", "B": "bytes", "O": "bytes",
    "{referer}i": "referer", "{user-agent}i": "user_agent", "{x-api-key}i": "api_key",
    "{x-forwarded-for}i": "xff",
}
_APACHE_TOKEN = re.compile(r"%(?:!?[0-9]+(?:,[0-9]+)*)?[<>]?(?:\{([^}]*)\})?([a-zA-Z%])")
_EPOCH_TIMES = ("sec", "msec", "usec", "begin:sec", "begin:msec", "begin:usec",
                "end:sec", "end:msec", "end:usec")


def from_spec(spec: str) -> LineRegex | None:
    """The custom format of a `--format` value `nginx:...`, `apache:...` or `regex:...`,
    or None when `spec` names no custom format.

    Raises:
        ConfigError: when the format string or regex cannot be used.
    """
    kind, _, text = spec.partition(":")
    builders = {"regex": lambda: LineRegex(text, "regex"), "nginx": lambda: nginx(text),
                "apache": lambda: apache(text)}
    if kind not in builders or not text:
        return None
    line_regex = builders[kind]()
    _check_re2(line_regex.regex)
    return line_regex


def _check_re2(regex: str) -> None:
    """Raise ConfigError when DuckDB's regex engine (RE2) cannot compile `regex`, which
    Python's `re` (used to check it first) accepted."""
    import duckdb

    try:
        duckdb.connect().execute("SELECT regexp_matches('', $regex)", {"regex": regex}).fetchall()
    except duckdb.Error as exc:
        raise ConfigError(f"not a regex the engine accepts (RE2: no look-around or "
                          f"back-references): {str(exc).splitlines()[0]}") from None


def nginx(log_format: str) -> LineRegex:
    """The line regex of an nginx `log_format` string (`$remote_addr - ...`)."""
    parts: list[tuple[str, str | None] | tuple[str, str, str]] = []  # see _compile
    at = 0
    for m in _NGINX_TOKEN.finditer(log_format):
        parts.append((log_format[at:m.start()], None))
        parts.append(("", NGINX_VARIABLES.get(m[1] or m[2], "")))
        at = m.end()
    parts.append((log_format[at:], None))
    return LineRegex(_compile(parts), "nginx log_format")


def apache(log_format: str) -> LineRegex:
    """The line regex of an Apache `LogFormat` string (`%h %l %u %t \\"%r\\" ...`)."""
    text = log_format.replace('\\"', '"')
    parts: list[tuple[str, str | None] | tuple[str, str, str]] = []
    time_format: str | None = None
    at = 0
    for m in _APACHE_TOKEN.finditer(text):
        parts.append((text[at:m.start()], None))
        argument, letter = m[1], m[2]
        at = m.end()
        if letter == "%":
            parts.append(("%", None))
            continue
        if argument is None:
            field = APACHE_DIRECTIVES.get(letter, "")
        else:
            field = APACHE_DIRECTIVES.get(f"{{{argument.lower()}}}{letter}",
                                          "time" if letter == "t" else "")
        if letter == "t" and argument is None:
            parts.append(("[", None))
            parts.append(("", "time"))
            parts.append(("]", None))
            continue
        if letter == "t" and argument not in _EPOCH_TIMES:
            if time_format is not None or argument.endswith("_frac"):
                field = ""  # a second time part: only the first one is read
            else:
                time_format = argument.removeprefix("begin:").removeprefix("end:")
                parts.append(("", field, _strftime_regex(time_format)))
                continue
        parts.append(("", field))
    parts.append((text[at:], None))
    return LineRegex(_compile(parts), "Apache LogFormat", time_format=time_format)


def _strftime_regex(time_format: str) -> str:
    """A regex for times written with `time_format`: each %-directive a short run of
    non-blank characters, the rest literal."""
    return "".join(r"\S+?" if piece.startswith("%") else re.escape(piece)
                   for piece in re.split(r"(%.)", time_format) if piece)


def _compile(parts: list[tuple[str, str | None] | tuple[str, str, str]]) -> str:
    """The regex of literal texts (field None) and values (field: a group name, or ''
    for a value no request field needs), each value optionally with its own regex."""
    pattern, used = [], set()
    for index, (literal, field, *own) in enumerate(parts):
        if field is None:
            pattern.append(re.escape(literal))
            continue
        after = next((p[0] for p in parts[index + 1:] if p[1] is None and p[0]), "")
        before = next((p[0] for p in reversed(parts[:index]) if p[1] is None and p[0]), "")
        if own:
            value = own[0]
        elif not after:
            value = ".*" if index == len(parts) - 2 else r"\S*?"
        elif after[0] == '"' and before.endswith('"'):
            value = r'(?:[^"\\]|\\.)*'
        else:
            value = f"[^{re.escape(after[0])}]*"
        if field and field not in used:
            used.add(field)
            pattern.append(f"(?P<{field}>{value})")
        else:
            pattern.append(f"(?:{value})")
    if not pattern:
        raise ConfigError("the log format is empty")
    return "".join(pattern)
