"""Reading log files: sources (paths, compression, hashes), line blocks and formats."""
