"""The optional native extension, in C: blocks cut into lines; plain lines of the line
formats (common, combined, vhost_combined, ALB, ELB) cut into fields; CSV, TSV and
CloudFront lines split into values; flat JSON objects read.

Everything else is declared in pyproject.toml. Where no C compiler is found, the
build goes on without the extension (optional=True) and numpy and DuckDB do that work
instead: the same answers, more slowly.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("scrapewatch.reading.formats._linecut",
                             ["scrapewatch/reading/formats/_linecut.c"],
                             extra_compile_args=["-O3"], optional=True)])
