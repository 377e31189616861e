"""Analysis: latency statistics, operator categories, per-operator tables, and on/off comparisons."""
