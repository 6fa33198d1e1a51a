#include "common/rng.h"

#include <cmath>

namespace alignpro {

namespace {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1

void mul_hi_lo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t product = uint64_t{a} * uint64_t{b};
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

}  // namespace

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mul_hi_lo(kPhiloxM0, c[0], hi0, lo0);
    mul_hi_lo(kPhiloxM1, c[2], hi1, lo1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += kPhiloxW0;
    k[1] += kPhiloxW1;
  }
  return c;
}

RngStream::RngStream(uint64_t seed, RngPurpose purpose, std::initializer_list<uint64_t> indices)
    : key_{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)} {
  // Fold the name in order, so (1, 2) and (2, 1) name different streams; the length is folded
  // in too, so a trailing zero index is not the same as no index.
  uint64_t id = mix64(static_cast<uint64_t>(purpose));
  for (uint64_t index : indices) id = mix64(id ^ mix64(index + 1));
  stream_id_ = mix64(id ^ indices.size());
}

void RngStream::refill() {
  block_index_ = position_ / 4;
  block_ =
      philox4x32_10({static_cast<uint32_t>(block_index_), static_cast<uint32_t>(block_index_ >> 32),
                     static_cast<uint32_t>(stream_id_), static_cast<uint32_t>(stream_id_ >> 32)},
                    key_);
}

uint32_t RngStream::next_u32() {
  if (position_ / 4 != block_index_) refill();
  return block_[position_++ % 4];
}

uint64_t RngStream::next_u64() {
  const uint64_t hi = next_u32();
  return (hi << 32) | next_u32();
}

double RngStream::uniform() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

uint64_t RngStream::below(uint64_t n) {
  // Rejection sampling on the top of the range removes the modulo bias.
  const uint64_t limit = ~uint64_t{0} - (~uint64_t{0} % n);
  uint64_t x;
  do {
    x = next_u64();
  } while (x >= limit);
  return x % n;
}

double RngStream::normal() {
  double u1 = uniform();
  while (u1 <= 0.0) u1 = uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

void RngStream::seek(uint64_t position) {
  position_ = position;
}

}  // namespace alignpro
