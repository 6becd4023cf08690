"""The installed version, which report files and `--version` carry."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scrapewatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
