"""`python -m scrapewatch`."""

from scrapewatch.cli import main

main()
