// Checks that every rank resolved the same job before any collective of the run starts.
#pragma once

#include "common/job.h"
#include "dist/communicator.h"

namespace alignpro {

// Throws InputError on every rank when any rank's resolved job differs from rank 0's; the
// message names each such rank and its first differing key: "rank r has X, rank 0 has Y".
void check_same_job(Communicator& comm, const Job& job);

}  // namespace alignpro
