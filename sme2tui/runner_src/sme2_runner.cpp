// sme2_runner: a host runner for ExecuTorch programs, built against the installed executorch wheel.
//
// Command line compatible with upstream `executor_runner` (--model_path --num_executions --cpu_threads
// --etdump_path --method_name --inputs), plus what sme2tui needs to trust a measurement:
//   --warmup N          in-process warmup executions; they are the first N Execute blocks of the ETDump
//   --timing_json PATH  per-iteration latencies (ns, steady clock), warmup and measured kept apart; load
//                       times (program, method), planned memory, and this process's peak RSS in bytes
//                       (VmHWM on Linux/Android, getrusage on macOS; see peak_rss_bytes)
//   --output_dir DIR    every output as raw bytes + outputs.json (dtype/shape) for comparison with Python
//   --verbose           pass the runtime's Info/Debug log through (default: errors only)
//   --maps_path PATH    copy /proc/self/maps there at exit (Linux): where every library was loaded, so an
//                       emulator's executed-code log can be mapped to the functions that ran
//   --progress          print "sme2_runner: progress measured=K/N" on stdout as measured executions finish
//                       (at most every 100 ms, outside the timed region), so a front-end can show counts move
// Without --etdump_path no event tracer is attached, so timing-only runs carry no profiling overhead.
//
// Exit codes: 0 ok, 1 internal, 2 usage, 3 model load, 4 method load, 5 inputs, 6 execution, 7 writing
// results. Every failure ends with exactly one line "sme2_runner: error: ..." on stderr.

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <executorch/devtools/etdump/etdump_flatcc.h>
#include <executorch/extension/data_loader/file_data_loader.h>
#include <executorch/extension/memory_allocator/malloc_memory_allocator.h>
#include <executorch/runtime/core/error.h>
#include <executorch/runtime/core/evalue.h>
#include <executorch/runtime/core/event_tracer.h>
#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/method_meta.h>
#include <executorch/runtime/executor/program.h>
#include <executorch/runtime/platform/platform.h>
#include <executorch/runtime/platform/runtime.h>

#ifdef SME2_RUNNER_HAVE_THREADPOOL
#include <executorch/extension/threadpool/threadpool_guard.h>

// threadpool.h and cpuinfo_utils.h are not shipped in the wheel, but libexecutorch_threadpool.so exports
// these functions (it is what XNNPACK and the optimized kernels take their pthreadpool from). Declaring
// the few members we call is ABI-safe: no layout is assumed because the object is only used through the
// pointer the library hands out, and the mangled names match the library's exports
// (_ZN10executorch9extension10threadpool10ThreadPool24_unsafe_reset_threadpoolEj, ...).
namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  size_t get_thread_count() const;
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
} // namespace executorch::extension::threadpool
namespace executorch::extension::cpuinfo {
uint32_t get_num_performant_cores();
} // namespace executorch::extension::cpuinfo
#endif

using executorch::aten::ScalarType;
using executorch::aten::Tensor;
using executorch::aten::TensorImpl;
using executorch::extension::FileDataLoader;
using executorch::extension::MallocMemoryAllocator;
using executorch::runtime::Error;
using executorch::runtime::EValue;
using executorch::runtime::EventTracer;
using executorch::runtime::HierarchicalAllocator;
using executorch::runtime::MemoryManager;
using executorch::runtime::Method;
using executorch::runtime::MethodMeta;
using executorch::runtime::Program;
using executorch::runtime::Result;
using executorch::runtime::Span;
using executorch::runtime::Tag;

namespace {

enum ExitCode : int {
  kOk = 0,
  kInternal = 1,
  kUsage = 2,
  kModelLoad = 3,
  kMethodLoad = 4,
  kInputs = 5,
  kExecution = 6,
  kWrite = 7,
};

bool g_verbose = false;
// Runtime errors seen so far. Without --verbose they are folded into the final error line instead of
// printed as they happen, so a failure is exactly one line on stderr and still says what the runtime saw.
std::vector<std::string> g_runtime_errors;

// Thrown for every user-visible failure; main() prints it as the single error line.
struct Failure {
  int code;
  std::string message;
};

[[noreturn]] void fail(int code, const std::string& message) {
  throw Failure{code, message};
}

std::string error_name(Error e) {
  std::ostringstream out;
  out << executorch::runtime::to_string(e) << " (0x" << std::hex << static_cast<uint32_t>(e) << ")";
  return out.str();
}

// ---------------------------------------------------------------------------------------------- flags

struct Options {
  std::string model_path = "model.pte";  // upstream default
  uint32_t num_executions = 1;
  int32_t cpu_threads = -1;  // -1: number of performant cores, like upstream
  std::string etdump_path;   // empty: timing-only mode, no event tracer attached
  std::string method_name;   // empty: first method of the program, like upstream
  std::string inputs;
  uint32_t warmup = 0;
  std::string timing_json;
  std::string output_dir;
  std::string maps_path;
  bool progress = false;
};

const char* kUsageText =
    "usage: sme2_runner --model_path=PATH [--num_executions=N] [--warmup=N] [--cpu_threads=N]\n"
    "                   [--etdump_path=PATH] [--method_name=NAME] [--inputs=F1,F2,...]\n"
    "                   [--timing_json=PATH] [--output_dir=DIR] [--maps_path=PATH] [--progress] [--verbose]\n";

uint32_t parse_uint(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || value > UINT32_MAX || text[0] == '-') {
    fail(kUsage, "--" + flag + " expects a non-negative integer, got '" + text + "'");
  }
  return static_cast<uint32_t>(value);
}

int32_t parse_int(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || value < INT32_MIN || value > INT32_MAX) {
    fail(kUsage, "--" + flag + " expects an integer, got '" + text + "'");
  }
  return static_cast<int32_t>(value);
}

// gflags syntax subset: --name=value, --name value, -name=value; booleans as --name / --name=true.
Options parse_args(int argc, char** argv) {
  Options o;
  const std::map<std::string, std::string*> strings = {
      {"model_path", &o.model_path}, {"etdump_path", &o.etdump_path}, {"method_name", &o.method_name},
      {"inputs", &o.inputs},         {"timing_json", &o.timing_json}, {"output_dir", &o.output_dir},
      {"maps_path", &o.maps_path},
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0) {
      arg = arg.substr(2);
    } else if (arg.rfind('-', 0) == 0) {
      arg = arg.substr(1);
    } else {
      fail(kUsage, "unexpected argument '" + arg + "'");
    }
    std::string name = arg;
    std::optional<std::string> value;
    const auto eq = arg.find('=');
    if (eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    if (name == "help") {
      std::fputs(kUsageText, stdout);
      std::exit(kOk);
    }
    if (name == "verbose") {
      g_verbose = !value || *value == "true" || *value == "1";
      continue;
    }
    if (name == "progress") {
      o.progress = !value || *value == "true" || *value == "1";
      continue;
    }
    const bool known = strings.count(name) || name == "num_executions" || name == "cpu_threads" ||
        name == "warmup";
    if (!known) {
      fail(kUsage, "unknown flag --" + name);
    }
    if (!value) {
      if (i + 1 >= argc) {
        fail(kUsage, "--" + name + " needs a value");
      }
      value = argv[++i];
    }
    if (auto it = strings.find(name); it != strings.end()) {
      *it->second = *value;
    } else if (name == "num_executions") {
      o.num_executions = parse_uint(name, *value);
    } else if (name == "warmup") {
      o.warmup = parse_uint(name, *value);
    } else {
      o.cpu_threads = parse_int(name, *value);
    }
  }
  if (o.num_executions == 0) {
    fail(kUsage, "--num_executions must be at least 1");
  }
  if (o.cpu_threads == 0 || o.cpu_threads < -1) {
    fail(kUsage, "--cpu_threads must be -1 (performant cores) or a positive count");
  }
  return o;
}

// ------------------------------------------------------------------------------------------- helpers

std::string json_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

// Names as torch spells them without the "torch." prefix, so Python maps them with getattr(torch, name).
const char* dtype_name(ScalarType t) {
  switch (t) {
    case ScalarType::Byte: return "uint8";
    case ScalarType::Char: return "int8";
    case ScalarType::Short: return "int16";
    case ScalarType::Int: return "int32";
    case ScalarType::Long: return "int64";
    case ScalarType::Half: return "float16";
    case ScalarType::Float: return "float32";
    case ScalarType::Double: return "float64";
    case ScalarType::Bool: return "bool";
    case ScalarType::BFloat16: return "bfloat16";
    default: return "unknown";
  }
}

// Default input when no --inputs are given: ones, as upstream's prepare_input_tensors does. Types with no
// obvious "one" (quantized, complex) stay zero-filled.
void fill_ones(ScalarType t, void* data, size_t nbytes) {
  auto fill = [&](auto one) {
    using T = decltype(one);
    T* p = static_cast<T*>(data);
    for (size_t i = 0; i < nbytes / sizeof(T); ++i) {
      p[i] = one;
    }
  };
  switch (t) {
    case ScalarType::Byte: fill(uint8_t{1}); break;
    case ScalarType::Char: fill(int8_t{1}); break;
    case ScalarType::Short: fill(int16_t{1}); break;
    case ScalarType::Int: fill(int32_t{1}); break;
    case ScalarType::Long: fill(int64_t{1}); break;
    case ScalarType::Float: fill(1.0f); break;
    case ScalarType::Double: fill(1.0); break;
    case ScalarType::Bool: fill(uint8_t{1}); break;
    case ScalarType::Half: fill(uint16_t{0x3C00}); break;      // IEEE binary16 1.0
    case ScalarType::BFloat16: fill(uint16_t{0x3F80}); break;  // bfloat16 1.0
    default: std::memset(data, 0, nbytes);
  }
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> parts;
  if (s.empty()) {
    return parts;
  }
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    parts.push_back(part);
  }
  if (s.back() == ',') {
    parts.emplace_back();
  }
  return parts;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    fail(kInputs, "cannot open input file '" + path + "'");
  }
  const std::streamsize size = in.tellg();
  in.seekg(0, std::ios::beg);
  std::vector<uint8_t> data(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(data.data()), size)) {
    fail(kInputs, "cannot read input file '" + path + "'");
  }
  return data;
}

void write_file(const std::string& path, const void* data, size_t size) {
  // stdio with an explicit fclose check: a buffered stream that fails only when it is flushed (a full disk)
  // would otherwise exit 0 with a truncated file behind it.
  errno = 0;
  FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) {
    fail(kWrite, "cannot write '" + path + "': " + std::strerror(errno));
  }
  const size_t written = size == 0 ? 0 : std::fwrite(data, 1, size, out);
  const int write_errno = errno;
  const bool closed = std::fclose(out) == 0;
  if (written != size || !closed) {
    fail(kWrite, "cannot write '" + path + "': " + std::strerror(written != size ? write_errno : errno));
  }
}

// Threads of this process right now (main + pool workers), so callers can verify --cpu_threads took
// effect rather than trusting the request. -1 where /proc is not available (macOS).
int count_os_threads() {
  std::error_code ec;
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    (void)entry;
    ++n;
  }
  return ec ? -1 : n;
}

// Peak resident set size of this process so far, in bytes (-1 if unknown).
// Linux and Android: VmHWM from /proc/self/status, this process image's own high-water mark. Not getrusage:
// Linux keeps ru_maxrss across execve, so a runner started from a 300 MB Python process would report at
// least 300 MB. macOS: getrusage, whose ru_maxrss counts bytes there (kilobytes on Linux).
int64_t peak_rss_bytes() {
#if defined(__linux__)
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      const long long kib = std::strtoll(line.c_str() + 6, nullptr, 10);
      return kib > 0 ? static_cast<int64_t>(kib) * 1024 : -1;
    }
  }
  return -1;
#else
  struct rusage usage {};
  if (getrusage(RUSAGE_SELF, &usage) != 0) {
    return -1;
  }
  return static_cast<int64_t>(usage.ru_maxrss);  // bytes on macOS
#endif
}

int64_t ns_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

int configure_threads(int32_t requested) {
#ifdef SME2_RUNNER_HAVE_THREADPOOL
  using executorch::extension::threadpool::get_threadpool;
  const uint32_t n = requested == -1 ? executorch::extension::cpuinfo::get_num_performant_cores()
                                     : static_cast<uint32_t>(requested);
  if (n > 0 && !get_threadpool()->_unsafe_reset_threadpool(n)) {
    fail(kInternal, "could not resize the thread pool to " + std::to_string(n) + " threads");
  }
  return static_cast<int>(get_threadpool()->get_thread_count());
#else
  (void)requested;
  return 1;
#endif
}

// ----------------------------------------------------------------------------------------- the run

// Input tensors built once from the method's metadata and re-applied before every execution: memory
// planning may place later activations in an input's buffer once the input is dead, so an input set only
// once is garbage from the second execution on (the Python runtime also sets inputs on every call).
struct Inputs {
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<std::unique_ptr<TensorImpl>> impls;
  std::vector<size_t> indices;  // method input index of each impl
};

Inputs prepare_inputs(const MethodMeta& meta, const std::string& inputs_flag) {
  Inputs inputs;
  const std::vector<std::string> files = split_commas(inputs_flag);
  size_t tensor_inputs = 0;
  for (size_t i = 0; i < meta.num_inputs(); ++i) {
    if (meta.input_tag(i).get() == Tag::Tensor) {
      ++tensor_inputs;
    }
  }
  if (!files.empty() && files.size() != tensor_inputs) {
    fail(kInputs, "--inputs names " + std::to_string(files.size()) + " file(s) but method '" +
                      meta.name() + "' takes " + std::to_string(tensor_inputs) + " tensor input(s)");
  }
  inputs.buffers.reserve(tensor_inputs);  // impls point into these buffers: no reallocation allowed
  size_t file_index = 0;
  for (size_t i = 0; i < meta.num_inputs(); ++i) {
    Result<Tag> tag = meta.input_tag(i);
    if (!tag.ok()) {
      fail(kInputs, "input " + std::to_string(i) + ": no metadata (" + error_name(tag.error()) + ")");
    }
    // Non-tensor inputs keep the values baked into the program, as in upstream.
    if (tag.get() != Tag::Tensor) {
      continue;
    }
    Result<executorch::runtime::TensorInfo> info = meta.input_tensor_meta(i);
    if (!info.ok()) {
      fail(kInputs, "input " + std::to_string(i) + ": no tensor metadata");
    }
    const size_t nbytes = info->nbytes();
    std::vector<uint8_t> data;
    if (files.empty()) {
      data.resize(nbytes);
      fill_ones(info->scalar_type(), data.data(), nbytes);
    } else {
      const std::string& path = files[file_index++];
      data = read_file(path);
      if (data.size() != nbytes) {
        fail(kInputs, "input " + std::to_string(i) + " from '" + path + "' has " +
                          std::to_string(data.size()) + " bytes, method expects " + std::to_string(nbytes) +
                          " (" + dtype_name(info->scalar_type()) + ")");
      }
    }
    inputs.buffers.push_back(std::move(data));
    // sizes/dim_order point into the program's flatbuffer, which outlives the method.
    inputs.impls.push_back(std::make_unique<TensorImpl>(
        info->scalar_type(), static_cast<ssize_t>(info->sizes().size()),
        const_cast<TensorImpl::SizesType*>(info->sizes().data()), inputs.buffers.back().data(),
        const_cast<TensorImpl::DimOrderType*>(info->dim_order().data())));
    inputs.indices.push_back(i);
  }
  return inputs;
}

void apply_inputs(Method& method, Inputs& inputs) {
  for (size_t k = 0; k < inputs.impls.size(); ++k) {
    const Error err = method.set_input(EValue(Tensor(inputs.impls[k].get())), inputs.indices[k]);
    if (err != Error::Ok) {
      fail(kInputs, "set_input(" + std::to_string(inputs.indices[k]) + ") failed: " + error_name(err));
    }
  }
}

void write_outputs(Method& method, const std::string& dir, const std::string& method_name) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    fail(kWrite, "cannot create output directory '" + dir + "': " + ec.message());
  }
  std::vector<EValue> outputs(method.outputs_size());
  const Error err = method.get_outputs(outputs.data(), outputs.size());
  if (err != Error::Ok) {
    fail(kExecution, "get_outputs failed: " + error_name(err));
  }
  std::ostringstream json;
  json << "{\n  \"schema\": \"sme2tui.runner_outputs/1\",\n  \"method\": \"" << json_escape(method_name)
       << "\",\n  \"outputs\": [";
  for (size_t i = 0; i < outputs.size(); ++i) {
    json << (i ? ",\n" : "\n") << "    {\"index\": " << i << ", ";
    const EValue& v = outputs[i];
    if (v.isTensor()) {
      const Tensor t = v.toTensor();
      const std::string file = "output_" + std::to_string(i) + ".bin";
      write_file((std::filesystem::path(dir) / file).string(), t.const_data_ptr(), t.nbytes());
      json << "\"kind\": \"tensor\", \"file\": \"" << file << "\", \"dtype\": \"" << dtype_name(t.scalar_type())
           << "\", \"shape\": [";
      for (ssize_t d = 0; d < t.dim(); ++d) {
        json << (d ? ", " : "") << t.size(d);
      }
      json << "], \"dim_order\": [";
      for (size_t d = 0; d < t.dim_order().size(); ++d) {
        json << (d ? ", " : "") << static_cast<int>(t.dim_order()[d]);
      }
      json << "], \"nbytes\": " << t.nbytes() << "}";
    } else if (v.isInt()) {
      json << "\"kind\": \"int\", \"value\": " << v.toInt() << "}";
    } else if (v.isDouble()) {
      // JSON has no NaN/Infinity literals.
      const double d = v.toDouble();
      json << "\"kind\": \"double\", \"value\": ";
      if (std::isfinite(d)) {
        json << std::setprecision(17) << d;
      } else {
        json << "null";
      }
      json << "}";
    } else if (v.isBool()) {
      json << "\"kind\": \"bool\", \"value\": " << (v.toBool() ? "true" : "false") << "}";
    } else {
      json << "\"kind\": \"other\", \"tag\": " << static_cast<int>(v.tag) << "}";
    }
  }
  json << "\n  ]\n}\n";
  const std::string text = json.str();
  write_file((std::filesystem::path(dir) / "outputs.json").string(), text.data(), text.size());
}

// Under QEMU user mode /proc/self/maps lists the guest's mappings, so this is where the emulated process
// loaded each library: the key to turning translated-code addresses into function names.
void write_maps(const std::string& path) {
  std::ifstream in("/proc/self/maps", std::ios::binary);
  if (!in) {
    fail(kWrite, "cannot read /proc/self/maps (--maps_path needs Linux)");
  }
  std::ostringstream text;
  text << in.rdbuf();
  const std::string data = text.str();
  write_file(path, data.data(), data.size());
}

void write_ns_array(std::ostringstream& json, const std::vector<int64_t>& values) {
  json << "[";
  for (size_t i = 0; i < values.size(); ++i) {
    json << (i ? ", " : "") << values[i];
  }
  json << "]";
}

int run(const Options& o) {
  const int pool_threads = configure_threads(o.cpu_threads);
#ifdef SME2_RUNNER_HAVE_THREADPOOL
  // Upstream runs the optimized kernels' parallel_for inline for one thread; do the same so a
  // --cpu_threads=1 cell means the same thing here as with upstream executor_runner.
  std::optional<executorch::extension::threadpool::NoThreadPoolGuard> single_thread;
  if (o.cpu_threads == 1) {
    single_thread.emplace();
  }
#endif

  const auto load_start = std::chrono::steady_clock::now();
  if (!std::filesystem::is_regular_file(o.model_path)) {
    fail(kModelLoad, "model file '" + o.model_path + "' does not exist or is not a file");
  }
  Result<FileDataLoader> loader = FileDataLoader::from(o.model_path.c_str());
  if (!loader.ok()) {
    fail(kModelLoad, "cannot open model '" + o.model_path + "': " + error_name(loader.error()));
  }
  Result<Program> program = Program::load(&loader.get());
  if (!program.ok()) {
    fail(kModelLoad, "'" + o.model_path + "' is not a loadable ExecuTorch program: " +
                         error_name(program.error()));
  }

  const auto program_loaded = std::chrono::steady_clock::now();

  std::string method_name = o.method_name;
  if (method_name.empty()) {
    Result<const char*> first = program->get_method_name(0);
    if (!first.ok()) {
      fail(kMethodLoad, "program has no methods");
    }
    method_name = *first;
  }
  Result<MethodMeta> meta = program->method_meta(method_name.c_str());
  if (!meta.ok()) {
    std::string names;
    for (size_t i = 0; i < program->num_methods(); ++i) {
      names += std::string(i ? ", " : "") + program->get_method_name(i).get();
    }
    fail(kMethodLoad, "method '" + method_name + "' not in program (has: " + names + ")");
  }

  // Planned buffers sized from the program, as upstream does; malloc-backed allocators so a large
  // delegate init never hits a fixed pool limit.
  std::vector<std::unique_ptr<uint8_t[]>> planned;
  std::vector<Span<uint8_t>> planned_spans;
  size_t planned_bytes = 0;
  for (size_t id = 0; id < meta->num_memory_planned_buffers(); ++id) {
    const size_t size = static_cast<size_t>(meta->memory_planned_buffer_size(id).get());
    planned_bytes += size;
    planned.push_back(std::make_unique<uint8_t[]>(size));
    planned_spans.emplace_back(planned.back().get(), size);
  }
  HierarchicalAllocator planned_memory({planned_spans.data(), planned_spans.size()});
  MallocMemoryAllocator method_allocator;
  MallocMemoryAllocator temp_allocator;
  MemoryManager memory_manager(&method_allocator, &planned_memory, &temp_allocator);

  std::unique_ptr<executorch::etdump::ETDumpGen> etdump;
  if (!o.etdump_path.empty()) {
    etdump = std::make_unique<executorch::etdump::ETDumpGen>();
  }
  const auto method_load_start = std::chrono::steady_clock::now();
  Result<Method> method = program->load_method(method_name.c_str(), &memory_manager, etdump.get());
  if (!method.ok()) {
    fail(kMethodLoad, "loading method '" + method_name + "' failed: " + error_name(method.error()) +
                          " (a delegate or operator this runner was not linked with?)");
  }
  const auto load_end = std::chrono::steady_clock::now();
  const int64_t peak_rss_after_load = peak_rss_bytes();

  Inputs inputs = prepare_inputs(*meta, o.inputs);

  std::vector<int64_t> warmup_ns;
  std::vector<int64_t> measured_ns;
  const uint32_t total = o.warmup + o.num_executions;
  auto last_progress = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < total; ++i) {
    apply_inputs(*method, inputs);  // outside the timed region: a copy, not model work
    const auto t0 = std::chrono::steady_clock::now();
    const Error err = method->execute();
    const auto t1 = std::chrono::steady_clock::now();
    if (err != Error::Ok) {
      fail(kExecution, "execution " + std::to_string(i) + " of method '" + method_name +
                           "' failed: " + error_name(err));
    }
    const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
    (i < o.warmup ? warmup_ns : measured_ns).push_back(ns);
    // Outside the timed region; throttled so a sub-millisecond model does not become a printing loop.
    if (o.progress && i >= o.warmup &&
        (i + 1 == total || t1 - last_progress >= std::chrono::milliseconds(100))) {
      std::printf("sme2_runner: progress measured=%zu/%" PRIu32 "\n", measured_ns.size(), o.num_executions);
      std::fflush(stdout);
      last_progress = t1;
    }
  }
  const int os_threads = count_os_threads();
  const int64_t peak_rss = peak_rss_bytes();  // before writing the ETDump: the model's memory, not the dump's

  if (etdump) {
    executorch::etdump::ETDumpResult result = etdump->get_etdump_data();
    if (result.buf == nullptr || result.size == 0) {
      fail(kWrite, "the event tracer produced no ETDump data");
    }
    std::unique_ptr<void, decltype(&std::free)> owned(result.buf, &std::free);
    write_file(o.etdump_path, result.buf, result.size);
  }
  if (!o.output_dir.empty()) {
    write_outputs(*method, o.output_dir, method_name);
  }

  if (!o.maps_path.empty()) {
    write_maps(o.maps_path);
  }

  int64_t measured_total = 0;
  for (const int64_t ns : measured_ns) {
    measured_total += ns;
  }
  if (!o.timing_json.empty()) {
    std::ostringstream json;
    json << "{\n  \"schema\": \"sme2tui.runner_timing/1\",\n  \"clock\": \"steady_clock\",\n"
         << "  \"unit\": \"ns\",\n  \"model_path\": \"" << json_escape(o.model_path) << "\",\n"
         << "  \"method\": \"" << json_escape(method_name) << "\",\n"
         << "  \"cpu_threads_requested\": " << o.cpu_threads << ",\n"
         << "  \"threadpool_threads\": " << pool_threads << ",\n"
         << "  \"os_threads\": " << os_threads << ",\n"
         << "  \"event_tracer\": " << (etdump ? "true" : "false") << ",\n"
         << "  \"load_ns\": " << ns_between(load_start, load_end) << ",\n"
         << "  \"program_load_ns\": " << ns_between(load_start, program_loaded) << ",\n"
         << "  \"method_load_ns\": " << ns_between(method_load_start, load_end) << ",\n"
         << "  \"peak_rss_after_load_bytes\": " << peak_rss_after_load << ",\n"
         << "  \"peak_rss_bytes\": " << peak_rss << ",\n"
         << "  \"planned_memory_bytes\": " << planned_bytes << ",\n"
         << "  \"warmup\": " << o.warmup << ",\n  \"num_executions\": " << o.num_executions << ",\n"
         << "  \"warmup_ns\": ";
    write_ns_array(json, warmup_ns);
    json << ",\n  \"measured_ns\": ";
    write_ns_array(json, measured_ns);
    json << "\n}\n";
    const std::string text = json.str();
    write_file(o.timing_json, text.data(), text.size());
  }

  // Same sentence upstream prints, so scripts that parse executor_runner output keep working.
  std::printf("Model executed successfully %" PRIu32 " time(s) in %f ms.\n", o.num_executions,
              static_cast<double>(measured_total) / 1e6);
  std::printf("sme2_runner: method=%s warmup=%" PRIu32 " executions=%" PRIu32
              " threads=%d etdump=%s\n",
              method_name.c_str(), o.warmup, o.num_executions, pool_threads, etdump ? "yes" : "no");
  return kOk;
}

} // namespace

// Replaces the runtime's weak default so its Info chatter does not drown the one-line error contract;
// runtime errors still reach stderr, everything with --verbose.
extern "C" void et_pal_emit_log_message(et_timestamp_t, et_pal_log_level_t level, const char* filename,
                                        const char*, size_t line, const char* message, size_t) {
  if (g_verbose) {
    std::fprintf(stderr, "executorch: %c %s:%zu] %s\n", static_cast<char>(level), filename, line, message);
  } else if (level == kError || level == kFatal) {
    g_runtime_errors.emplace_back(message);
  }
}

int main(int argc, char** argv) {
  executorch::runtime::runtime_init();
  try {
    const int code = run(parse_args(argc, argv));
    for (const std::string& message : g_runtime_errors) {
      std::fprintf(stderr, "executorch: E %s\n", message.c_str());
    }
    return code;
  } catch (const Failure& f) {
    std::fflush(stdout);
    std::string line = f.message;
    if (!g_runtime_errors.empty()) {
      line += " [runtime: " + g_runtime_errors.back() + "]";
    }
    for (char& c : line) {
      c = c == '\n' ? ' ' : c;
    }
    std::fprintf(stderr, "sme2_runner: error: %s\n", line.c_str());
    return f.code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sme2_runner: error: internal: %s\n", e.what());
    return kInternal;
  }
}
