/* Memory for a model's weights, on transparent huge pages where the kernel allows them.

   Decode streams every weight once per step (270 MB a step for SmolLM2-135M in F16). On 4 KiB
   pages that is 66,000 page translations a step, and the hardware prefetchers stop at every page
   boundary. Linux backs anonymous memory with 2 MiB pages only where asked
   (/sys/kernel/mm/transparent_hugepage/enabled is "madvise" on Debian), and glibc's malloc does
   not ask. With 2 MiB pages (measured by running the same binary with
   GLIBC_TUNABLES=glibc.malloc.hugetlb=1, which makes malloc ask): batch-1 decode of the F16
   SmolLM2 GGUF 104.7 -> 117.3 tokens/s, batch 8 489 -> 548 (medians of 5 alternated rounds).
   On 4 KiB pages the same binary ran at ~120 tokens/s in some runs and ~105 in others, with where
   malloc happened to put the weights; from here it ran at ~120 in both.

   Layout: mappings aligned to SY_WEIGHT_CHUNK (a power of two) and advised MADV_HUGEPAGE before
   anything touches them, each starting with a header. Allocations under a quarter of a chunk are
   carved one after another from the current chunk (a model's matrices, in load order); larger
   ones get a mapping of their own. A chunk is unmapped when its last allocation is freed and it
   is no longer the one being carved, so memory stays bounded by the live weights plus about one
   chunk; the latest allocation of the chunk being carved, freed, is carved again. Thread-safe
   (one mutex); freeing is by address (the header is at the address rounded down to the chunk
   size). Where madvise has no MADV_HUGEPAGE the pages are ordinary ones. */
#include "CKernels.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define SY_WEIGHT_CHUNK ((size_t)32 << 20)
#define SY_WEIGHT_ALIGN ((size_t)64)

typedef struct {
    size_t mapped;  /* bytes of the mapping, header included */
    size_t used;    /* bytes carved so far, header included (chunks) */
    size_t last;    /* offset of the latest allocation still carved there, 0 when none (chunks) */
    long live;      /* allocations not yet freed */
    int dedicated;  /* one allocation of its own */
} weight_map;

static pthread_mutex_t weight_lock = PTHREAD_MUTEX_INITIALIZER;
static weight_map *current_chunk = NULL;

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* A fresh mapping of `bytes` (a multiple of the page size) aligned to SY_WEIGHT_CHUNK, advised to
   use huge pages; NULL when the system has no memory for it. */
static weight_map *map_aligned(size_t bytes) {
    const size_t span = bytes + SY_WEIGHT_CHUNK;
    uint8_t *raw = (uint8_t *)mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == (uint8_t *)MAP_FAILED) return NULL;
    uint8_t *base = (uint8_t *)round_up((uintptr_t)raw, SY_WEIGHT_CHUNK);
    if (base > raw) munmap(raw, (size_t)(base - raw));
    const size_t tail = (size_t)(raw + span - (base + bytes));
    if (tail > 0) munmap(base + bytes, tail);
#ifdef MADV_HUGEPAGE
    madvise(base, bytes, MADV_HUGEPAGE); /* advice only: refused (THP off), the pages are ordinary */
#endif
    weight_map *m = (weight_map *)base;
    m->mapped = bytes;
    m->used = SY_WEIGHT_ALIGN;
    m->last = 0;
    m->live = 0;
    m->dedicated = 0;
    return m;
}

void *sy_weight_alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    const size_t size = round_up(bytes, SY_WEIGHT_ALIGN);
    if (size > SY_WEIGHT_CHUNK / 4) {
        const long page = sysconf(_SC_PAGESIZE);
        weight_map *m = map_aligned(round_up(size + SY_WEIGHT_ALIGN, page > 0 ? (size_t)page : 4096));
        if (!m) return NULL;
        m->dedicated = 1;
        m->live = 1;
        return (uint8_t *)m + SY_WEIGHT_ALIGN;
    }
    pthread_mutex_lock(&weight_lock);
    if (!current_chunk || current_chunk->used + size > current_chunk->mapped) {
        weight_map *fresh = map_aligned(SY_WEIGHT_CHUNK);
        if (!fresh) {
            pthread_mutex_unlock(&weight_lock);
            return NULL;
        }
        if (current_chunk && current_chunk->live == 0) munmap(current_chunk, current_chunk->mapped);
        current_chunk = fresh;
    }
    void *p = (uint8_t *)current_chunk + current_chunk->used;
    current_chunk->last = current_chunk->used;
    current_chunk->used += size;
    current_chunk->live++;
    pthread_mutex_unlock(&weight_lock);
    return p;
}

void sy_weight_free(void *p) {
    if (!p) return;
    weight_map *m = (weight_map *)((uintptr_t)p & ~(uintptr_t)(SY_WEIGHT_CHUNK - 1));
    if (m->dedicated) {
        munmap(m, m->mapped);
        return;
    }
    pthread_mutex_lock(&weight_lock);
    /* The latest allocation of the chunk being carved is handed out again: a loader that tries a
       form, fails and falls back (F16 kept as BF16 only if exact, a repack that refuses) would
       otherwise leave the touched huge pages of each attempt behind for the chunk's lifetime. */
    if (m == current_chunk && m->last != 0 && (uint8_t *)p == (uint8_t *)m + m->last) {
        m->used = m->last;
        m->last = 0;
    }
    if (--m->live == 0 && m != current_chunk) munmap(m, m->mapped);
    pthread_mutex_unlock(&weight_lock);
}
