// Where a rank computes: one CUDA device per rank, chosen from the node-local rank, when libtorch
// has CUDA and a device is visible; the CPU otherwise. The same code path serves both.
#pragma once

#include <torch/torch.h>

#include <string>

namespace alignpro {

// CUDA device (local_rank mod the device count) when one is usable, else the CPU. `preference`
// is "auto", "cpu" or "cuda"; "cuda" without a usable device is an InputError.
torch::Device choose_device(int local_rank, const std::string& preference = "auto");

// float32 on the CPU; bfloat16 on CUDA where the device supports it, float16 otherwise.
torch::ScalarType default_dtype(torch::Device device);

// Parses "float32", "bfloat16", "float16" (and "auto", which gives default_dtype(device)).
torch::ScalarType parse_dtype(const std::string& name, torch::Device device);

// Waits for queued device work (for timing); a no-op on the CPU.
void synchronize(torch::Device device);

}  // namespace alignpro
