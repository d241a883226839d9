/* Per-thread scratch memory (scratch.h). */
#include "scratch.h"
#include <pthread.h>
#include <stdlib.h>

#define SY_SCRATCH_MAX_BYTES ((size_t)1 << 20)

typedef struct {
    void *buffer[SY_SCRATCH_SLOTS];
    size_t capacity[SY_SCRATCH_SLOTS];
    int held[SY_SCRATCH_SLOTS];
} scratch_slots;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok = 0;

/* Frees a thread's buffers when it exits (a server's request threads come and go). */
static void scratch_free(void *p) {
    scratch_slots *s = (scratch_slots *)p;
    for (int i = 0; i < SY_SCRATCH_SLOTS; i++) free(s->buffer[i]);
    free(s);
}

static void scratch_init(void) { scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0; }

/* This thread's slots, made on first use; NULL when they cannot be. */
static scratch_slots *this_thread(void) {
    pthread_once(&scratch_once, scratch_init);
    if (!scratch_key_ok) return NULL;
    scratch_slots *s = (scratch_slots *)pthread_getspecific(scratch_key);
    if (!s) {
        s = (scratch_slots *)calloc(1, sizeof(scratch_slots));
        if (!s) return NULL;
        if (pthread_setspecific(scratch_key, s) != 0) { free(s); return NULL; }
    }
    return s;
}

static void *aligned_bytes(size_t bytes) {
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

void *sy_scratch_take(int slot, size_t bytes) {
    if (bytes == 0) bytes = 1;
    scratch_slots *s = bytes <= SY_SCRATCH_MAX_BYTES ? this_thread() : NULL;
    if (!s || s->held[slot]) return aligned_bytes(bytes);
    if (s->capacity[slot] < bytes) {
        void *grown = aligned_bytes(bytes);
        if (!grown) return NULL;
        free(s->buffer[slot]);
        s->buffer[slot] = grown;
        s->capacity[slot] = bytes;
    }
    s->held[slot] = 1;
    return s->buffer[slot];
}

void sy_scratch_give(int slot, void *p) {
    if (!p) return;
    pthread_once(&scratch_once, scratch_init);
    scratch_slots *s = scratch_key_ok ? (scratch_slots *)pthread_getspecific(scratch_key) : NULL;
    if (s && p == s->buffer[slot] && s->held[slot]) {
        s->held[slot] = 0;
        return;
    }
    free(p);
}
