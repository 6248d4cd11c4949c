"""taskstream's benchmark suite: `python -m bench --quick` or `python -m bench` (full)."""
