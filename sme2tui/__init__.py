"""sme2tui: measure ExecuTorch models with Arm SME2 on and off, and explain where the time goes.

The package is the core (config, doctor, export, run, analysis, report, CLI). It never imports Textual;
the wizard lives in the sibling `screens` package and is imported lazily by the CLI.
"""

__version__ = "0.1.0"
