"""Interop with Arm's SME2 ExecuTorch profiling kit (github.com/ArmDeveloperEcosystem/sme-executorch-profiling).

People switching to sme2tui arrive with the kit's JSON configs, its run folders and runners it built. This
package reads them the way the kit itself does (same keys, same defaults, same file names; see each module
for the kit source it follows) and says plainly where sme2tui differs:

* `config`   — a kit pipeline config, read like the kit's `config_loader.py`, with what the kit silently
               ignored (unknown keys, the docs' `num_runs`/`num_threads`) kept for the report.
* `names`    — which platform and which SME2 side an experiment is, from its name and runner path.
* `importer` — kit config → sme2tui config, with a field-by-field mapping table.
* `folder`   — a kit run folder: its ETDumps grouped by experiment and thread count, its pairs.

Nothing here runs the kit or imports its code.
"""
