#include "align/sharding.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace alignpro {

namespace {

void check_unit(int64_t unit, int64_t units) {
  if (unit < 0 || unit >= units) {
    throw RuntimeError("work unit " + std::to_string(unit) + " is outside the step's " +
                       std::to_string(units) + " units");
  }
}

}  // namespace

int64_t unit_index(const WorkUnit& unit, int64_t candidates) {
  return unit.slot * candidates + unit.candidate;
}

WorkUnit work_unit(int64_t unit, int64_t candidates) {
  return WorkUnit{unit / candidates, unit % candidates};
}

Sharding::Sharding(int64_t units, int ranks) : units_(units), ranks_(ranks) {
  if (ranks < 1)
    throw RuntimeError("a sharding needs at least one rank, got " + std::to_string(ranks));
  if (units < ranks) {
    throw InputError("a step has " + std::to_string(units) +
                     " work units (optim.batch_prompts * prompter.candidates) but the job runs "
                     "on " +
                     std::to_string(ranks) +
                     " ranks; every rank needs at least one unit: raise optim.batch_prompts "
                     "or prompter.candidates, or use fewer ranks");
  }
  base_ = units / ranks;
  extra_ = units % ranks;
}

UnitRange Sharding::range(int rank) const {
  if (rank < 0 || rank >= ranks_) {
    throw RuntimeError("rank " + std::to_string(rank) + " is outside a world of " +
                       std::to_string(ranks_) + " ranks");
  }
  const int64_t begin = rank * base_ + std::min<int64_t>(rank, extra_);
  return UnitRange{begin, begin + base_ + (rank < extra_ ? 1 : 0)};
}

int Sharding::owner(int64_t unit) const {
  check_unit(unit, units_);
  const int64_t long_units = extra_ * (base_ + 1);  // units held by the ranks with one more
  if (unit < long_units) return static_cast<int>(unit / (base_ + 1));
  return static_cast<int>(extra_ + (unit - long_units) / base_);
}

}  // namespace alignpro
