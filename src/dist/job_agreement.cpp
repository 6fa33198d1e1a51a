#include "dist/job_agreement.h"

#include <sstream>

namespace alignpro {

namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The first `key = value` line where two resolved jobs differ, as "has X, rank 0 has Y".
std::string first_difference(const std::string& mine, const std::string& reference) {
  const auto a = lines(mine), b = lines(reference);
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const std::string x = i < a.size() ? a[i] : "(nothing)";
    const std::string y = i < b.size() ? b[i] : "(nothing)";
    if (x != y) return "has " + x + ", rank 0 has " + y;
  }
  return "has the same keys but a different hash";
}

}  // namespace

void check_same_job(Communicator& comm, const Job& job) {
  const std::string mine = job.canonical();
  const std::string reference = comm.broadcast(mine, 0, "job agreement");
  const std::string report = mine == reference ? ""
                                               : "rank " + std::to_string(comm.rank()) + " " +
                                                     first_difference(mine, reference);
  const auto reports = comm.allgather(report, "job agreement");
  std::string message;
  for (const auto& r : reports) {
    if (!r.empty()) message += (message.empty() ? "" : "; ") + r;
  }
  if (!message.empty()) {
    throw InputError("the ranks resolved different jobs (" + job.path + "): " + message);
  }
}

}  // namespace alignpro
