"""Runner builds: the native host runner (built against the executorch wheel) and SME2 on/off pairs of
upstream `executor_runner` (built from an ExecuTorch source tree for Android or macOS).

Nothing here imports torch or executorch: building a runner needs only CMake, a compiler and files.
"""
