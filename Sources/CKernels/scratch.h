/* Private to CKernels: per-thread scratch memory for kernels' temporaries.

   A batch-8 decode step of SmolLM2 took about 2,500 small malloc/free pairs (each weight-product
   task's unpacked rows, each attention task's scores, each product's quantised activations), and
   glibc consolidated its free lists on many of them: malloc and free were 3-4% of both threads'
   time. Each thread now keeps one buffer per slot and reuses it. */
#ifndef SWITCHYARD_CKERNELS_SCRATCH_H
#define SWITCHYARD_CKERNELS_SCRATCH_H

#include <stddef.h>

/* The kernels' uses: distinct slots, so that one function's buffer is never handed to another
   that runs while the first still holds it (a product's caller holds its activations while it
   runs the product's tasks). */
enum { SY_SCRATCH_ACTIVATIONS, SY_SCRATCH_UNPACKED, SY_SCRATCH_SCORES, SY_SCRATCH_SLOTS };

/* `bytes` of memory aligned to 64 bytes for this thread's use until sy_scratch_give, or NULL when
   none can be had. The slot's buffer when it is free and the request is at most 1 MiB (kept and
   grown, never shrunk, freed when the thread exits); otherwise, malloc's (a second holder of the
   slot on the same thread, or a larger request, which is rare and amortised by its work). */
void *sy_scratch_take(int slot, size_t bytes);

/* Gives back what sy_scratch_take returned for `slot` (NULL is ignored). */
void sy_scratch_give(int slot, void *p);

#endif
