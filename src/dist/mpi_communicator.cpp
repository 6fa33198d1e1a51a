// The MPI communicator. Every call goes through check(), which turns an error code into a
// RuntimeError naming the call, the phase, the MPI error string and the rank. Collectives are
// posted non-blocking and waited for by wait(), which is also the stall watchdog: each rank
// tells the coordinator, on a separate communicator, which collective it has reached, so that
// after a while the coordinator can name the ranks that have not, and abort the job later.
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>
#include <thread>

#include "common/error.h"
#include "common/log.h"
#include "dist/communicator.h"

namespace alignpro {

namespace {

constexpr int kArrivalTag = 7301;
// Larger collectives are split: MPI counts are int, and smaller pieces pipeline better.
constexpr size_t kMaxChunk = size_t{1} << 26;

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, length);
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(double warn_seconds, double abort_seconds)
      : warn_seconds_(warn_seconds), abort_seconds_(abort_seconds) {
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup", "setup");
    check(MPI_Comm_dup(MPI_COMM_WORLD, &monitor_), "MPI_Comm_dup", "setup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(monitor_, MPI_ERRORS_RETURN);
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank", "setup");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", "setup");
    check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node_),
          "MPI_Comm_split_type", "setup");
    check(MPI_Comm_rank(node_, &local_rank_), "MPI_Comm_rank", "setup");
    check(MPI_Comm_size(node_, &local_size_), "MPI_Comm_size", "setup");
    char name[MPI_MAX_PROCESSOR_NAME] = {};
    int length = 0;
    check(MPI_Get_processor_name(name, &length), "MPI_Get_processor_name", "setup");
    host_.assign(name, length);
    reached_.assign(size_, 0);
  }

  ~MpiCommunicator() override {
    // Arrival notices still in flight have been received by now or never will be.
    for (auto& pending : arrivals_) MPI_Request_free(&pending.request);
    MPI_Comm_free(&node_);
    MPI_Comm_free(&monitor_);
    MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string host() const override { return host_; }

  void barrier(const char* phase) override {
    MPI_Request request;
    arrive();
    check(MPI_Ibarrier(comm_, &request), "MPI_Ibarrier", phase);
    wait(request, "MPI_Ibarrier", phase);
  }

  void allreduce_sum(float* data, size_t count, const char* phase) override {
    allreduce(data, count, MPI_FLOAT, sizeof(float), phase);
  }
  void allreduce_sum(double* data, size_t count, const char* phase) override {
    allreduce(data, count, MPI_DOUBLE, sizeof(double), phase);
  }

  void reduce_sum(float* data, size_t count, int root, const char* phase) override {
    for (size_t offset = 0; offset < count || (count == 0 && offset == 0); offset += kMaxChunk) {
      const int n = static_cast<int>(std::min(kMaxChunk, count - offset));
      MPI_Request request;
      arrive();
      const void* send = rank_ == root ? MPI_IN_PLACE : data + offset;
      check(MPI_Ireduce(send, data + offset, n, MPI_FLOAT, MPI_SUM, root, comm_, &request),
            "MPI_Ireduce", phase);
      wait(request, "MPI_Ireduce", phase);
      if (count == 0) break;
    }
  }

  void broadcast(void* data, size_t bytes, int root, const char* phase) override {
    auto* base = static_cast<char*>(data);
    for (size_t offset = 0; offset < bytes || (bytes == 0 && offset == 0); offset += kMaxChunk) {
      const int n = static_cast<int>(std::min(kMaxChunk, bytes - offset));
      MPI_Request request;
      arrive();
      check(MPI_Ibcast(base + offset, n, MPI_BYTE, root, comm_, &request), "MPI_Ibcast", phase);
      wait(request, "MPI_Ibcast", phase);
      if (bytes == 0) break;
    }
  }

  std::vector<std::vector<float>> allgather(const std::vector<float>& mine,
                                            const char* phase) override {
    std::vector<int> counts, offsets;
    const int total = exchange_counts(static_cast<int64_t>(mine.size()), counts, offsets, phase);
    std::vector<float> flat(total);
    MPI_Request request;
    arrive();
    check(MPI_Iallgatherv(mine.data(), static_cast<int>(mine.size()), MPI_FLOAT, flat.data(),
                          counts.data(), offsets.data(), MPI_FLOAT, comm_, &request),
          "MPI_Iallgatherv", phase);
    wait(request, "MPI_Iallgatherv", phase);
    std::vector<std::vector<float>> out(size_);
    for (int r = 0; r < size_; ++r) {
      out[r].assign(flat.begin() + offsets[r], flat.begin() + offsets[r] + counts[r]);
    }
    return out;
  }

  std::vector<std::string> allgather(const std::string& mine, const char* phase) override {
    std::vector<int> counts, offsets;
    const int total = exchange_counts(static_cast<int64_t>(mine.size()), counts, offsets, phase);
    std::string flat(total, '\0');
    MPI_Request request;
    arrive();
    check(MPI_Iallgatherv(mine.data(), static_cast<int>(mine.size()), MPI_BYTE, flat.data(),
                          counts.data(), offsets.data(), MPI_BYTE, comm_, &request),
          "MPI_Iallgatherv", phase);
    wait(request, "MPI_Iallgatherv", phase);
    std::vector<std::string> out(size_);
    for (int r = 0; r < size_; ++r) out[r] = flat.substr(offsets[r], counts[r]);
    return out;
  }

  std::vector<std::string> gather(const std::string& mine, int root, const char* phase) override {
    // Sizes go to every rank (cheap), so that a failure to agree surfaces everywhere.
    std::vector<int> counts, offsets;
    const int total = exchange_counts(static_cast<int64_t>(mine.size()), counts, offsets, phase);
    std::string flat(rank_ == root ? total : 0, '\0');
    MPI_Request request;
    arrive();
    check(MPI_Igatherv(mine.data(), static_cast<int>(mine.size()), MPI_BYTE, flat.data(),
                       counts.data(), offsets.data(), MPI_BYTE, root, comm_, &request),
          "MPI_Igatherv", phase);
    wait(request, "MPI_Igatherv", phase);
    std::vector<std::string> out;
    if (rank_ == root) {
      for (int r = 0; r < size_; ++r) out.push_back(flat.substr(offsets[r], counts[r]));
    }
    return out;
  }

  [[noreturn]] void abort(const std::string& message, int exit_code) override {
    spdlog::critical("[mpi] aborting the job: {}", message);
    spdlog::default_logger()->flush();
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);
  }

 private:
  void check(int code, const char* call, const char* phase) const {
    if (code == MPI_SUCCESS) return;
    throw RuntimeError(std::string(call) + " in phase '" + phase + "' failed on rank " +
                       std::to_string(rank_) + " of " + std::to_string(size_) + " (" + host_ +
                       "): " + mpi_error_string(code));
  }

  void allreduce(void* data, size_t count, MPI_Datatype type, size_t element, const char* phase) {
    auto* base = static_cast<char*>(data);
    for (size_t offset = 0; offset < count; offset += kMaxChunk) {
      const int n = static_cast<int>(std::min(kMaxChunk, count - offset));
      MPI_Request request;
      arrive();
      check(
          MPI_Iallreduce(MPI_IN_PLACE, base + offset * element, n, type, MPI_SUM, comm_, &request),
          "MPI_Iallreduce", phase);
      wait(request, "MPI_Iallreduce", phase);
    }
  }

  // Every rank's count and the offsets of a gather of them; returns the total.
  int exchange_counts(int64_t mine, std::vector<int>& counts, std::vector<int>& offsets,
                      const char* phase) {
    if (mine > std::numeric_limits<int>::max()) {
      throw RuntimeError(std::string("phase '") + phase + "' on rank " + std::to_string(rank_) +
                         ": a contribution of " + std::to_string(mine) +
                         " elements is larger than one MPI message allows");
    }
    counts.assign(size_, 0);
    int count = static_cast<int>(mine);
    MPI_Request request;
    arrive();
    check(MPI_Iallgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_, &request),
          "MPI_Iallgather", phase);
    wait(request, "MPI_Iallgather", phase);
    offsets.assign(size_, 0);
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[r] = static_cast<int>(total);
      total += counts[r];
    }
    if (total > std::numeric_limits<int>::max()) {
      throw RuntimeError(std::string("phase '") + phase + "': gathering " + std::to_string(total) +
                         " elements is more than one MPI message allows");
    }
    return static_cast<int>(total);
  }

  // Tells the coordinator that this rank has reached the next collective.
  void arrive() {
    ++sequence_;
    if (size_ == 1) return;
    if (rank_ == 0) {
      reached_[0] = sequence_;
      return;
    }
    // Completed notices are released; the rest stay with their buffers until they complete.
    while (!arrivals_.empty()) {
      int done = 0;
      MPI_Test(&arrivals_.front().request, &done, MPI_STATUS_IGNORE);
      if (!done) break;
      arrivals_.pop_front();
    }
    arrivals_.push_back({sequence_, MPI_REQUEST_NULL});
    auto& notice = arrivals_.back();
    check(MPI_Isend(&notice.sequence, 1, MPI_UINT64_T, 0, kArrivalTag, monitor_, &notice.request),
          "MPI_Isend", "watchdog");
  }

  // The coordinator reads every arrival notice that has come in.
  void drain_arrivals() {
    for (;;) {
      int flag = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, kArrivalTag, monitor_, &flag, &status);
      if (!flag) return;
      uint64_t reached = 0;
      MPI_Recv(&reached, 1, MPI_UINT64_T, status.MPI_SOURCE, kArrivalTag, monitor_,
               MPI_STATUS_IGNORE);
      reached_[status.MPI_SOURCE] = std::max(reached_[status.MPI_SOURCE], reached);
    }
  }

  std::string missing_ranks() const {
    std::string names;
    int shown = 0, missing = 0;
    for (int r = 0; r < size_; ++r) {
      if (reached_[r] >= sequence_) continue;
      ++missing;
      if (shown < 8) {
        names += (shown ? ", " : "") + std::to_string(r);
        ++shown;
      }
    }
    if (missing > shown) names += ", ... (" + std::to_string(missing) + " in all)";
    return names;
  }

  void wait(MPI_Request& request, const char* call, const char* phase) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    bool warned = false;
    for (int polls = 0;; ++polls) {
      int done = 0;
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), call, phase);
      if (rank_ == 0 && size_ > 1) drain_arrivals();
      if (done) return;
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (!warned && waited > warn_seconds_) {
        warned = true;
        if (rank_ == 0) {
          spdlog::warn("[watchdog] phase '{}': waited {:.0f} s; ranks not yet there: {}", phase,
                       waited, missing_ranks());
        } else {
          spdlog::warn("[watchdog] phase '{}': waited {:.0f} s for the other ranks", phase, waited);
        }
      }
      if (waited > abort_seconds_) {
        const std::string who = rank_ == 0 ? "; ranks that never arrived: " + missing_ranks() : "";
        abort("phase '" + std::string(phase) + "' (" + call + ") waited " +
                  std::to_string(static_cast<int>(waited)) + " s on rank " + std::to_string(rank_) +
                  who,
              kExitRuntimeFailure);
      }
      // Spin briefly for latency, then sleep so oversubscribed ranks leave the cores to others.
      if (polls < 200) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(polls < 2000 ? 50 : 500));
      }
    }
  }

  struct Arrival {
    uint64_t sequence;
    MPI_Request request;
  };

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm monitor_ = MPI_COMM_NULL;
  MPI_Comm node_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::string host_;
  double warn_seconds_, abort_seconds_;
  uint64_t sequence_ = 0;
  std::vector<uint64_t> reached_;  // coordinator only: the last collective each rank reached
  std::deque<Arrival> arrivals_;   // notices in flight; a deque keeps their addresses stable
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(double warn_seconds, double abort_seconds) {
  return std::make_unique<MpiCommunicator>(warn_seconds, abort_seconds);
}

MpiSession::MpiSession(int* argc, char*** argv) {
  if (!launched_by_mpi()) return;
  int provided = 0;
  const int code = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  if (code != MPI_SUCCESS) {
    throw RuntimeError("MPI_Init_thread failed: " + mpi_error_string(code));
  }
  active_ = true;
}

MpiSession::~MpiSession() {
  if (!active_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::unique_ptr<Communicator> MpiSession::world(double warn_seconds, double abort_seconds) {
  if (!active_) return make_local_communicator();
  return make_mpi_communicator(warn_seconds, abort_seconds);
}

}  // namespace alignpro
