#include "broker/owned_fd.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "tests/support/temp_dir.h"

using namespace mcp::broker;

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// Records the descriptors handed to it, and closes them.
struct recording_closer {
  std::vector<int> got;
  static void close(void* ctx, int fd) noexcept {
    static_cast<recording_closer*>(ctx)->got.push_back(fd);
    ::close(fd);
  }
};

struct closer_installed {
  explicit closer_installed(recording_closer& r) { thread_fd_closer = {&r, &recording_closer::close}; }
  ~closer_installed() { thread_fd_closer = {}; }
};

}  // namespace

TEST_CASE("owned_fd: a duplicate whose file was deleted since it was made goes to the thread's closer") {
  mcp::test::temp_dir dir;
  const auto path = dir.path() / "seg.log";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  recording_closer rec;
  closer_installed installed(rec);

  SUBCASE("no deletion since: a plain close, no fstat, no closer") {
    owned_fd d = owned_fd::duplicate(fd);
    REQUIRE(d.valid());
    const int n = d.get();
    d.reset();
    CHECK_FALSE(is_open(n));
    CHECK(rec.got.empty());
  }
  SUBCASE("a deletion elsewhere, this file still named: a plain close") {
    owned_fd d = owned_fd::duplicate(fd);
    const int n = d.get();
    segment_files_deleted();
    d.reset();
    CHECK_FALSE(is_open(n));
    CHECK(rec.got.empty());
  }
  SUBCASE("this file deleted: the closer gets it, also after a move") {
    owned_fd d = owned_fd::duplicate(fd);
    const int n = d.get();
    REQUIRE(std::filesystem::remove(path));
    segment_files_deleted();
    owned_fd moved = std::move(d);
    CHECK_FALSE(d.valid());
    moved.reset();
    REQUIRE(rec.got.size() == 1);
    CHECK(rec.got[0] == n);
    CHECK_FALSE(is_open(n));
  }
  SUBCASE("a thread without a closer closes in place") {
    thread_fd_closer = {};
    owned_fd d = owned_fd::duplicate(fd);
    const int n = d.get();
    REQUIRE(std::filesystem::remove(path));
    segment_files_deleted();
    d.reset();
    CHECK_FALSE(is_open(n));
    CHECK(rec.got.empty());
  }
  ::close(fd);
}
