"""Fast, low-memory ETDump reader (numpy column decoding; never imports torch or executorch).

`read_etdump(path)` returns an `EtdumpTrace`: every profile event as columns (model.py), grouped into
load events and one iteration per execute call (`parse_etdump(data, path)` does the same for bytes
already in memory); `trace.iterations[i]` gives an iteration's events as objects when wanted.
It agrees with ExecuTorch's `Inspector` event for event (names, per-iteration durations; see
tests/test_etdump_inspector.py) at a fraction of its time and memory (benchmarks/etdump_read.py).

How ETDumps are laid out (ExecuTorch 1.5.1, read from real traces of the Python runtime):

* The file is a size-prefixed flatbuffer (flatcc) with identifier "ED00"; plain buffers are accepted too.
  Truncation is caught by the size prefix; any other bad offset raises `EtdumpError`. Non-regular files
  (FIFOs, devices) and files over the size limit are refused before they are read (reader.py).
* `run_data` holds one RunData per event block. Loading logs a "Default" block with `Method::init` and
  `Program::load_method`; every `Method::execute` call opens its own "Execute" block (method.cpp creates
  the block at the start of execute), warmups included.
* Iterations are delimited by the `Method::execute` event itself, not by block names: an iteration is
  the events of a block up to and including a `Method::execute`. Events are logged when they *end*, so
  the total comes last. Load events (`Method::init`, `Program::load_method`) never join an iteration;
  events left after a block's last `Method::execute` are kept as non-iteration (kind "load") events.

Nesting (wrappers and their children):

* Every event is logged at its end, so the file is in post-order: a kernel's `native_call_<op>.out`
  comes right before its `OPERATOR_CALL`, and a delegate's internal events (XNNPACK: one per XNNPACK
  operator, name in `delegate_debug_id_str`) come right before their `DELEGATE_CALL`.
* Rule: a wrapper (`DELEGATE_CALL`/`OPERATOR_CALL`) contains the contiguous run of events immediately
  before it that share its instruction id, stopping at the previous wrapper or total. Times are not
  used: XNNPACK's internal start times are synthetic (whole microseconds laid end to end).
* Checked on real traces: every child has its wrapper's instruction id, a wrapper lasts at least the sum
  of its children, XNNPACK children sum to most of their DELEGATE_CALL, and every native_call_* event
  has an OPERATOR_CALL parent.
* A wrapper with no children (a delegate built without internal profiling) is a leaf; see
  `EtdumpTrace.leaf_events`.

Names follow Inspector: an event with a delegate debug id is named by that id (the integer one if set,
else the string; an empty string counts as absent), so XNNPACK events read e.g. "Convolution (NHWC,
F32) IGEMM #1". The " #n" suffix restarts per delegate blob: only (instruction id, name) is unique.

Units: start/end are raw ticks. The POSIX PAL used by the runtimes here ticks in nanoseconds
(`ticks_per_ns` = 1.0), which is also Inspector's default assumption (it divides by 1e6 to report ms);
the tests check per-iteration totals against Inspector's milliseconds and against wall-clock time.
"""

from sme2tui.etdump.errors import EtdumpError
from sme2tui.etdump.model import EtdumpTrace, EventKind, EventTable, Iteration, ProfileEvent, iteration_total_ns
from sme2tui.etdump.reader import parse_etdump, read_etdump

__all__ = [
    "EtdumpError",
    "EtdumpTrace",
    "EventKind",
    "EventTable",
    "Iteration",
    "ProfileEvent",
    "iteration_total_ns",
    "parse_etdump",
    "read_etdump",
]
