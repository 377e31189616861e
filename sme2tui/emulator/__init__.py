"""Real Arm code on any Linux machine: QEMU user mode with SME2, the aarch64 ExecuTorch wheel, a cross compiler.

`sme2tui setup emulator` gathers the three into the user cache (`state.EmulatorState` remembers what was found
and verified); the emulated target (sme2tui/run/emulated.py) and the arm64 runner build use them.
"""
