// The communicator: what the rest of alignpro knows of MPI. It moves bytes and floats between
// ranks and knows nothing of models. Two implementations: MPI, and a single process (world
// size 1), so that most tests need no mpirun.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace alignpro {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank and rank count among the processes of this node (to pick a GPU, size thread pools).
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  virtual std::string host() const = 0;
  bool is_coordinator() const { return rank() == 0; }

  // Every collective names the phase it belongs to; the name appears in errors and in the
  // watchdog's report.
  virtual void barrier(const char* phase) = 0;
  // In place: data becomes the element-wise sum over ranks.
  virtual void allreduce_sum(float* data, size_t count, const char* phase) = 0;
  virtual void allreduce_sum(double* data, size_t count, const char* phase) = 0;
  // In place: on root, data becomes the sum over ranks; elsewhere it is left unchanged.
  virtual void reduce_sum(float* data, size_t count, int root, const char* phase) = 0;
  virtual void broadcast(void* data, size_t bytes, int root, const char* phase) = 0;
  // Every rank's contribution, in rank order, on every rank. Contributions may differ in size.
  virtual std::vector<std::vector<float>> allgather(const std::vector<float>& mine,
                                                    const char* phase) = 0;
  virtual std::vector<std::string> allgather(const std::string& mine, const char* phase) = 0;
  // Every rank's bytes, in rank order, on root; an empty vector elsewhere.
  virtual std::vector<std::string> gather(const std::string& mine, int root, const char* phase) = 0;

  // Stops the whole job at once (after the message is logged). Never returns.
  [[noreturn]] virtual void abort(const std::string& message, int exit_code) = 0;

  // Broadcast of a string from root to all ranks.
  std::string broadcast(const std::string& text, int root, const char* phase);
  // A logical AND / OR over ranks.
  bool all(bool mine, const char* phase);
  bool any(bool mine, const char* phase);
};

// A world of one process.
std::unique_ptr<Communicator> make_local_communicator();

// The MPI world (MPI_COMM_WORLD, duplicated), with errors returned as exceptions that name the
// call, the MPI error string and the rank. MPI must have been initialised (see MpiSession).
// Collectives wait at most abort_seconds; after warn_seconds the coordinator names the ranks
// that have not arrived.
std::unique_ptr<Communicator> make_mpi_communicator(double warn_seconds = 120,
                                                    double abort_seconds = 1800);

// Initialises MPI on construction and finalises it on destruction, when this program is under
// an MPI launcher (mpirun, srun); otherwise does nothing and world() is a local communicator.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  bool active() const { return active_; }
  std::unique_ptr<Communicator> world(double warn_seconds = 120, double abort_seconds = 1800);

 private:
  bool active_ = false;
};

// Whether this process was started by an MPI launcher (mpirun, srun, mpiexec).
bool launched_by_mpi();

}  // namespace alignpro
