// Counter-based random streams. Every unit of work (a rewrite, a response, a shuffle) draws
// from its own stream, named by the run seed and a path such as (purpose, step, prompt,
// candidate, sample). A stream's numbers depend only on that name and on how many numbers were
// drawn from it before, never on the rank that draws them or on the order in which work is done.
//
// The generator is Philox-4x32 with 10 rounds (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC 2011): the key is the run seed, the counter is (stream id, draw index).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>

namespace alignpro {

// What a stream is used for; part of its name so that two purposes never share numbers.
enum class RngPurpose : uint64_t {
  kRewrite = 1,    // sampling a prompter's rewrite
  kResponse = 2,   // sampling a target's response
  kShuffle = 3,    // ordering a dataset per epoch
  kEval = 4,       // sampling during evaluation
  kBootstrap = 5,  // resampling for confidence intervals
  kInit = 6,       // initialising weights of models the project makes itself
};

class RngStream {
 public:
  // A stream named by the seed, the purpose and up to five indices (step, prompt, ...).
  RngStream(uint64_t seed, RngPurpose purpose, std::initializer_list<uint64_t> indices = {});

  uint32_t next_u32();
  uint64_t next_u64();
  // Uniform in [0, 1), 53 bits of resolution.
  double uniform();
  // Uniform integer in [0, n), without modulo bias. n must be positive.
  uint64_t below(uint64_t n);
  // Standard normal (Box-Muller).
  double normal();

  // How many 32-bit words have been drawn; with the name, this is the whole state.
  uint64_t position() const { return position_; }
  void seek(uint64_t position);
  uint64_t stream_id() const { return stream_id_; }

 private:
  void refill();

  std::array<uint32_t, 2> key_;
  uint64_t stream_id_;
  uint64_t position_ = 0;
  std::array<uint32_t, 4> block_{};
  uint64_t block_index_ = ~uint64_t{0};
};

// One round of the Philox-4x32-10 block function; exposed for the known-answer test.
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// A 64-bit mix (SplitMix64 finaliser) used to fold names into stream ids and to hash.
uint64_t mix64(uint64_t x);

}  // namespace alignpro
