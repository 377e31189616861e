"""Subprocess workers: heavy steps (torch, ExecuTorch) run in child processes that stream events as JSON
lines. The parent stays light, a crash in native code cannot take the pipeline down, and cancelling is a
kill."""
