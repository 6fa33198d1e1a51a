#include "dist/communicator.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace alignpro {

std::string Communicator::broadcast(const std::string& text, int root, const char* phase) {
  uint64_t length = text.size();
  broadcast(&length, sizeof(length), root, phase);
  std::string out = rank() == root ? text : std::string(length, '\0');
  if (length > 0) broadcast(out.data(), length, root, phase);
  return out;
}

bool Communicator::all(bool mine, const char* phase) {
  double value = mine ? 1.0 : 0.0;
  allreduce_sum(&value, 1, phase);
  return value == size();
}

bool Communicator::any(bool mine, const char* phase) {
  double value = mine ? 1.0 : 0.0;
  allreduce_sum(&value, 1, phase);
  return value > 0;
}

namespace {

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string host() const override { return host_name(); }
  void barrier(const char*) override {}
  void allreduce_sum(float*, size_t, const char*) override {}
  void allreduce_sum(double*, size_t, const char*) override {}
  void reduce_sum(float*, size_t, int root, const char* phase) override { check_root(root, phase); }
  void broadcast(void*, size_t, int root, const char* phase) override { check_root(root, phase); }
  std::vector<std::vector<float>> allgather(const std::vector<float>& mine, const char*) override {
    return {mine};
  }
  std::vector<std::string> allgather(const std::string& mine, const char*) override {
    return {mine};
  }
  std::vector<std::string> gather(const std::string& mine, int root, const char* phase) override {
    check_root(root, phase);
    return {mine};
  }
  [[noreturn]] void abort(const std::string&, int exit_code) override { std::_Exit(exit_code); }

 private:
  // A single process has only rank 0; naming another root is a programming error that would
  // hang under MPI, so it fails loudly here too.
  static void check_root(int root, const char* phase) {
    if (root != 0) {
      throw RuntimeError(std::string("collective '") + phase + "' names root rank " +
                         std::to_string(root) + " in a world of 1 rank");
    }
  }
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                           "MPI_LOCALNRANKS", "HYDRA_CONTROL_FD"}) {
    if (std::getenv(name)) return true;
  }
  return false;
}

}  // namespace alignpro
