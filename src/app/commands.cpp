#include "app/commands.h"

#include <H5public.h>
#include <mpi.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <iostream>

#include "alignpro/build_info.h"
#include "common/job.h"

namespace alignpro {

int run_check(const CheckArgs& args) {
  JobReadOptions options;
  options.overrides = args.overrides;
  options.world_size = args.ranks;
  const Job job = read_job(args.job, options);
  std::cout << "# " << job.path << ": valid for " << args.ranks << " rank"
            << (args.ranks == 1 ? "" : "s") << "; resolved configuration:\n"
            << job.to_toml();
  return 0;
}

int run_version() {
  char mpi_version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(mpi_version, &length);
  std::string mpi(mpi_version, length);
  if (auto comma = mpi.find(','); comma != std::string::npos) mpi = mpi.substr(0, comma);
  unsigned h5_major = 0, h5_minor = 0, h5_release = 0;
  H5get_libversion(&h5_major, &h5_minor, &h5_release);
  std::cout << "alignpro " << kVersion << " (git " << kGitRevision << ")\n"
            << "libtorch " << TORCH_VERSION << "\n"
            << "MPI " << mpi << "\n"
            << "HDF5 " << h5_major << "." << h5_minor << "." << h5_release << "\n"
            << "CUDA " << (torch::cuda::is_available() ? "available" : "not available")
            << " (" << torch::cuda::device_count() << " device"
            << (torch::cuda::device_count() == 1 ? "" : "s") << ")\n";
  return 0;
}

int run_reference() {
  std::cout << job_reference_markdown();
  return 0;
}

}  // namespace alignpro
