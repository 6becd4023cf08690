"""scrapewatch: who accessed more than a million posts in 24 hours, and what they owe."""

from scrapewatch.version import __version__

__all__ = ["__version__"]
