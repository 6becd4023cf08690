"""The optional native extension: plain common/combined lines cut in C.

Everything else is declared in pyproject.toml. Where no C compiler is found, the
build goes on without the extension (optional=True) and scrapewatch cuts those lines
with DuckDB's regex instead: the same answers, more slowly.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("scrapewatch.ingest.formats._clfcut",
                             ["scrapewatch/ingest/formats/_clfcut.c"],
                             extra_compile_args=["-O3"], optional=True)])
