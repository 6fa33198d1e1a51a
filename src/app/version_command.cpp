// `alignpro version` and `alignpro reference`: facts about this build.
#include <H5public.h>
#include <mpi.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <iostream>

#include "alignpro/build_info.h"
#include "app/command.h"
#include "common/job.h"

namespace alignpro {

namespace {

int run_version() {
  char mpi_version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(mpi_version, &length);
  std::string mpi(mpi_version, length);
  if (auto comma = mpi.find(','); comma != std::string::npos) mpi = mpi.substr(0, comma);
  unsigned h5_major = 0, h5_minor = 0, h5_release = 0;
  H5get_libversion(&h5_major, &h5_minor, &h5_release);
  const auto devices = torch::cuda::device_count();
  std::cout << "alignpro " << kVersion << " (git " << kGitRevision << ")\n"
            << "libtorch " << TORCH_VERSION << "\n"
            << "MPI " << mpi << "\n"
            << "HDF5 " << h5_major << "." << h5_minor << "." << h5_release << "\n"
            << "CUDA " << (torch::cuda::is_available() ? "available" : "not available") << " ("
            << devices << " device" << (devices == 1 ? "" : "s") << ")\n";
  return 0;
}

}  // namespace

Command add_version_command(CLI::App& app) {
  auto* sub = app.add_subcommand("version", "Print versions of alignpro and its libraries");
  return {sub, run_version};
}

Command add_reference_command(CLI::App& app) {
  auto* sub = app.add_subcommand("reference", "Print the job-file reference (Markdown)");
  return {sub, [] {
            std::cout << job_reference_markdown();
            return 0;
          }};
}

}  // namespace alignpro
