"""The optional native extension: plain lines of the line formats (common, combined,
vhost_combined, ALB, ELB) cut in C.

Everything else is declared in pyproject.toml. Where no C compiler is found, the
build goes on without the extension (optional=True) and scrapewatch cuts those lines
with DuckDB's regex instead: the same answers, more slowly.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("scrapewatch.ingest.formats._linecut",
                             ["scrapewatch/ingest/formats/_linecut.c"],
                             extra_compile_args=["-O3"], optional=True)])
