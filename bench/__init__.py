"""Performance report: `make bench` (python -m bench) prints one table per section."""
