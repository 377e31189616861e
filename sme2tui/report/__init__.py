"""Reports: the Markdown report in the run folder and the short human summary printed by `--auto`."""
