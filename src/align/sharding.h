// How the B*K work units of a step are split across ranks. A unit is one (prompt slot,
// candidate) pair, numbered slot * K + candidate; rank r takes one contiguous slice, and the
// slices differ in length by at most one (the first units % ranks ranks take one more). The
// split depends only on (units, ranks), so every rank computes every other rank's slice.
#pragma once

#include <cstdint>

namespace alignpro {

// One work unit: which prompt of the step's batch, and which of its K candidates.
struct WorkUnit {
  int64_t slot = 0;
  int64_t candidate = 0;
  bool operator==(const WorkUnit& other) const {
    return slot == other.slot && candidate == other.candidate;
  }
};

// A half-open range [begin, end) of unit indices.
struct UnitRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  bool contains(int64_t unit) const { return unit >= begin && unit < end; }
};

// The unit index of (slot, candidate) and back, for K candidates per prompt.
int64_t unit_index(const WorkUnit& unit, int64_t candidates);
WorkUnit work_unit(int64_t unit, int64_t candidates);

class Sharding {
 public:
  // Throws InputError when there are fewer units than ranks: every rank must have work, or
  // the group baselines and the gradient normalisation would silently change meaning.
  Sharding(int64_t units, int ranks);

  int64_t units() const { return units_; }
  int ranks() const { return ranks_; }
  // The slice of rank r.
  UnitRange range(int rank) const;
  // The rank that owns a unit (the inverse of range).
  int owner(int64_t unit) const;
  // The largest slice, for sizing buffers that every rank sends.
  int64_t max_slice() const { return base_ + (extra_ > 0 ? 1 : 0); }

 private:
  int64_t units_;
  int ranks_;
  int64_t base_;   // units every rank gets
  int64_t extra_;  // ranks 0 .. extra_-1 get one more
};

}  // namespace alignpro
