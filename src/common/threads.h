// Compute threads per rank. With R ranks on a node of C cores, each rank gets C / R threads, so
// that ranks do not fight over the cores.
#pragma once

namespace alignpro {

// Gives this rank `requested` compute threads (0: the node's cores divided by the ranks on the
// node, at least 1). Where the BLAS is OpenBLAS, its pool gets them and libtorch's own intra-op
// pool keeps one thread: libtorch's OpenMP workers spin between parallel regions while
// OpenBLAS's threads need the same cores, and on 2 cores that contention halved the decode
// throughput (224 against 757 tokens/s, alignpro_bench on a 56M-parameter Llama at batch 32).
// With another BLAS, libtorch gets them. Returns the number chosen.
int configure_threads(int requested, int ranks_on_node);

}  // namespace alignpro
