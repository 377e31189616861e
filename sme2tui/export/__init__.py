"""Export: PyTorch model -> ExecuTorch .pte + ETRecord, validated against eager. Torch-free facade; the
work happens in `sme2tui.export.worker` in a subprocess."""
