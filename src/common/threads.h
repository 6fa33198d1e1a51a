// Compute threads per rank. With R ranks on a node of C cores, each rank gets C / R threads for
// libtorch and for OpenBLAS, so that ranks do not fight over the cores.
#pragma once

namespace alignpro {

// Sets libtorch's intra-op threads and OpenBLAS's threads; requested = 0 means the node's cores
// divided by the ranks on the node (at least 1). Returns the number chosen.
int configure_threads(int requested, int ranks_on_node);

}  // namespace alignpro
