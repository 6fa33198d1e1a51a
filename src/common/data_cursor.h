// Where training stands in its prompts: the epoch and the position inside that epoch's order.
// A checkpoint stores it, so that a resumed run can check that it sees the same data.
#pragma once

#include <cstdint>

namespace alignpro {

struct DataCursor {
  int64_t epoch = 0;
  int64_t position = 0;  // prompts of the epoch already used
  bool operator==(const DataCursor& other) const {
    return epoch == other.epoch && position == other.position;
  }
};

}  // namespace alignpro
