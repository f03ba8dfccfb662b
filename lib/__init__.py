"""Cascade: crypto market stress dashboard (pipeline, analytics, charts, command line)."""
