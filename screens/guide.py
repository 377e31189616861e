"""The words on each step: a short "why this matters" line and a guide (what you should see,
troubleshooting, how to apply the step to your own model). Text only, no logic."""

from __future__ import annotations

WHY: dict[str, str] = {
    "environment": "SME2 makes matrix compute 3–15× faster, but only if the CPU has it and the toolchain can "
    "use it. First: what this machine can prove.",
    "build": "SME2 on/off is a build-time switch: two runners that differ only in the SME2 flags are the only "
    "fair way to measure it.",
    "model": "Export decides what XNNPACK runs (and so what SME2 can speed up); the numerics check proves the "
    "exported program still computes the same thing.",
    "run": "Cells are measured interleaved (on, off, on, off…) so drift and heat hit both sides alike; warmup "
    "iterations are dropped.",
    "analyze": "With matrix work 3–15× faster, data movement (transposes, copies, converts) becomes the next "
    "bottleneck: the breakdown shows where the time went.",
    "history": "Every run folder holds its config, manifest and analysis: re-run it, edit it, or resume it.",
}

GUIDE: dict[str, str] = {
    "environment": """\
### What you should see
- ✓ python, torch, executorch (pinned versions), disk.
- **host sme2**: `pass` on Apple M4/M5 or Arm C1 Linux; a warning elsewhere — this host can still run the
  whole workflow, but its comparison is XNNPACK vs portable kernels, not SME2 on vs off.
- Android: adb and NDK checks only matter for phone runs.

### Troubleshooting
- *torch/executorch missing*: `pip install torch==2.13.0 executorch==1.5.1` (pin both).
- *cmake too old*: `pip install 'cmake>=3.28'`.
- *no ADB server*: `adb start-server`; unauthorized → accept the prompt on the phone.

### Apply it to your model
Nothing model-specific here: `sme2tui doctor --json` gives the same checks for CI.
""",
    "build": """\
### What you should see
- The host runner builds in seconds against the installed executorch wheel.
- SME2 on/off pairs need an ExecuTorch source tree and, for phones, NDK r27+; the pair's CMake caches
  are compared and the build is refused if they differ in more than the SME switches.

### Troubleshooting
- *Backend XnnpackBackend is not registered*: a registration library was linked as-needed; rebuild.
- *built for the wrong architecture*: unset `CXX` and rebuild.
- No runner at all is fine on a host: cells then run in the Python runtime.

### Apply it to your model
Runners do not depend on the model: build once, run every model with them.
""",
    "model": """\
### What you should see
- For each model × dtype × delegate: how many nodes XNNPACK took, what stayed on portable kernels.
- ✓ numerics vs eager: cosine ≥ 0.9999 (fp32), looser for fp16/int8.

### Troubleshooting
- *numerics fail on fp16 portable LayerNorm* (dim 256/512): a known ExecuTorch defect; use XNNPACK or fp32.
- *export error*: the log names the op; `torch.export` needs static shapes.

### Apply it to your model
Give a factory `package.module:function` returning `(model, example_inputs)` (it may take a `dtype`
keyword), or a ready `.pte` in the config: `{"pte": "model.pte", "etrecord": "model.etrecord"}`.
""",
    "run": """\
### What you should see
- Every cell goes queued → running (iterations counting up) → done.
- Timing comes from the ETDump (`Method::execute` per iteration), warmup excluded.

### Troubleshooting
- *very noisy (CV > 10%)*: close other programs, pin cores (`target.cpu_affinity`), add iterations.
- Cancelled or crashed? Completed cells are kept: resume from History (`u`).

### Apply it to your model
`sme2tui --auto --config your.json` runs the same thing headless; `--json` prints a machine summary.
""",
    "analyze": """\
### What you should see
- A speedup with a 95% interval that excludes 1.0.
- Categories (CONV, GEMM, DATA_MOVEMENT, ELEMENTWISE, OTHER, OVERHEAD) add up to the end-to-end time.
- With SME2 on, CONV/GEMM shrink and DATA_MOVEMENT becomes the largest share (~40% in the published
  SqueezeSAM fp16 figures).

### Troubleshooting
- *interval includes 1.0*: more iterations, pinned cores, a quieter machine.
- *large OVERHEAD*: time outside the profiled operators (framework, delegate calls).

### Apply it to your model
Look at the top operators of the faster side: transposes/copies/converts are layout work you can often
remove (channels-last inputs, fewer permutes, fused ops).
""",
    "history": """\
### Keys
- **enter** open the analysis · **r** re-run with the same config · **e** edit it in the Model step
- **u** resume an interrupted run (completed cells are kept)
""",
}
