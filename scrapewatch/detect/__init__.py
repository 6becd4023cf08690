"""Detection: per-(entity, second) activity and rolling 24-hour windows, in SQL."""
