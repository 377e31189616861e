# Stand-in for the NDK's android.toolchain.cmake in sme2tui's tests: it targets 64-bit Arm with Debian's
# aarch64 cross compiler (g++-aarch64-linux-gnu), so the build produces a real aarch64 ELF whose header
# the tests check. It is not an Android toolchain: the binaries ask for the glibc loader.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# try_compile projects re-read this file; the real one forwards its settings to them the same way.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES ANDROID_ABI ANDROID_PLATFORM ANDROID_STL)

# The real toolchain file insists on these; so does the stand-in, to catch a caller that forgets them.
if(NOT ANDROID_ABI STREQUAL "arm64-v8a")
  message(FATAL_ERROR "fake NDK: ANDROID_ABI must be arm64-v8a, got '${ANDROID_ABI}'")
endif()
if(NOT ANDROID_PLATFORM MATCHES "^android-[0-9]+$")
  message(FATAL_ERROR "fake NDK: ANDROID_PLATFORM must look like android-NN, got '${ANDROID_PLATFORM}'")
endif()
if(NOT ANDROID_STL STREQUAL "c++_shared")
  message(FATAL_ERROR "fake NDK: ANDROID_STL must be c++_shared, got '${ANDROID_STL}'")
endif()
