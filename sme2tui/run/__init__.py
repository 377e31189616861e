"""Running cells: plan them from the config, execute them on a target, keep the run folder current."""
