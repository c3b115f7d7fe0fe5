"""The embedded demo: a small PMC-like corpus generated at run time, ingested end to end."""
