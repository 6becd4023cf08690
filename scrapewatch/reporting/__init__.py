"""The report: its model (report.json) and the writers that render it."""
