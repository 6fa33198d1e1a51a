#include "model/device.h"

#include <torch/cuda.h>

#ifdef ALIGNPRO_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

#include "common/error.h"

namespace alignpro {

torch::Device choose_device(int local_rank, const std::string& preference) {
  if (preference != "auto" && preference != "cpu" && preference != "cuda") {
    throw InputError("device \"" + preference + "\" is not supported; supported: auto, cpu, cuda");
  }
  if (preference == "cpu") return torch::kCPU;
  const bool usable = torch::cuda::is_available() && torch::cuda::device_count() > 0;
  if (!usable) {
    if (preference == "cuda") {
      throw InputError(
          "device \"cuda\" was asked for, but no CUDA device is usable (libtorch built without "
          "CUDA, or no GPU visible); use \"auto\" or \"cpu\"");
    }
    return torch::kCPU;
  }
  const auto count = static_cast<int>(torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % count));
}

torch::ScalarType default_dtype(torch::Device device) {
  if (!device.is_cuda()) return torch::kFloat32;
#ifdef ALIGNPRO_WITH_CUDA
  // bfloat16 matrix products run natively from compute capability 8.0 (Ampere) on.
  const auto* properties = at::cuda::getDeviceProperties(device.index());
  return properties->major >= 8 ? torch::kBFloat16 : torch::kFloat16;
#else
  return torch::kFloat16;
#endif
}

torch::ScalarType parse_dtype(const std::string& name, torch::Device device) {
  if (name == "auto") return default_dtype(device);
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kFloat16;
  throw InputError("dtype \"" + name +
                   "\" is not supported; supported: auto, float32, bfloat16, float16");
}

void synchronize(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

}  // namespace alignpro
