// Stand-in executor_runner: reports how it was built so tests can tell the variants apart.
#include <cstdio>

#ifndef XNN_LOG_LEVEL
#define XNN_LOG_LEVEL 0
#endif

int main() {
  std::printf("fake executor_runner sme2=%d sme=%d xnn_log_level=%d\n", FAKE_SME2, FAKE_SME, XNN_LOG_LEVEL);
  return 0;
}
