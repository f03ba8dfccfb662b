"""Cascade: crypto market stress dashboard (pipeline, analytics, charts, command line)."""

import os

# polars allocates through its own jemalloc, which reads this once, when polars is first imported
# (lib is imported before it everywhere: app.py, python -m lib, the benches). Transparent huge pages
# and a 10 s decay: the next query reuses the pages of the last one's big frames instead of the OS
# unmapping them and faulting them in again. Measured by bench/drawdowns_bench.py on the 2-core VMs
# here: episodes + metrics on 7.9M rows 0.43 s instead of 0.55-0.61 s; the app's peak RSS on a year of
# 1-minute bars 1.67 GB instead of 1.19 GB (freed memory goes back after 10 s idle). The user's own
# setting wins (an empty one restores jemalloc's defaults).
JEMALLOC_CONF = "thp:always,metadata_thp:always,dirty_decay_ms:10000,muzzy_decay_ms:10000"
os.environ.setdefault("_RJEM_MALLOC_CONF", JEMALLOC_CONF)
