"""Getting due rows to workers: the claims of due rows, the broker and its messages of row ids,
and periodic jobs that any one scheduler runs (a watermark per job)."""
