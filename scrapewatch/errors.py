"""The ScrapewatchError tree: every failure the library reports on purpose.

Only the cli package turns these into exit codes; the library raises and never exits.
"""


class ScrapewatchError(Exception):
    """Base of every error scrapewatch reports as a one-line message."""


class ConfigError(ScrapewatchError):
    """A config file or option is invalid (unknown key, bad value, bad regex)."""


class InputError(ScrapewatchError):
    """An input path cannot be read: missing, unreadable, corrupt compression."""


class FormatError(ScrapewatchError):
    """A file's format cannot be determined or is unknown."""


class UnknownFormatError(FormatError):
    """No format fits a file's first lines (`--format auto`): a stray file among logs,
    set aside unless `input.strict`. `reason` says why, without the file's name."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class RejectLimitError(ScrapewatchError):
    """More lines were rejected than `max_rejected_share` allows."""


class SandboxError(ScrapewatchError):
    """A `sql` statement reached past the store: a file outside it (and outside the
    folder --allow-files opened), ATTACH, an extension, or a setting."""


class StoreBusyError(ScrapewatchError):
    """Another process is writing the store."""


class EmptyInputError(InputError):
    """There is nothing to read: a directory without log files, or no line in them all."""


class OutputError(ScrapewatchError):
    """An --out folder cannot be written or swapped in (full disk, no permission, or a
    path that is not a scrapewatch output folder); the previous one is left as it was."""


class StoreError(ScrapewatchError):
    """A store cannot be read (a corrupt or foreign file) or written (full disk)."""


class TempFolderError(ScrapewatchError):
    """DuckDB ran out of memory and could not spill to its temp folder (full or not
    writable)."""
