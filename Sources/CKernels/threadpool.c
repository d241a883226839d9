#include "CKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include "simd.h"

/* A tiny fork-join pool for the decode hot loop. Workers spin briefly between jobs (decode issues
   hundreds of short parallel regions per token, back to back), then park on a condition variable,
   so an idle process uses no CPU. One job runs at a time; a caller that finds the pool busy runs
   its job serially. */

#define SY_MAX_THREADS 64
#define SY_SPIN_NANOS 300000L

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;   /* serialises callers */
static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static pthread_t workers[SY_MAX_THREADS];
static int worker_count = 0;          /* threads besides the caller */
static int requested_threads = 0;     /* 0 = not initialised */

/* The job being run. A job is published by bumping `generation`; its tasks are claimed from
   `job_state`, which packs the generation (high 32 bits) with the next task index (low 32 bits), so
   a claim made with a compare-and-swap can only succeed for the job the claimer read its function,
   context and count for. A worker that wakes late, or is preempted between two claims, therefore
   never runs a task of the next job with the last one's context or a stale index, and `job_done`
   counts exactly `job_count` tasks of the current job (the caller returns only after all of them). */
#define SY_JOB_CLOSED 0xFFFFFFFFu  /* an index no job reaches: no claim succeeds while the job is set up */
static _Atomic(sy_task_fn) job_fn;
static _Atomic(void *) job_ctx;
static atomic_int job_count;
static atomic_ullong job_state;
static atomic_int job_done;
static atomic_long generation;
static atomic_int sleepers;

static long now_nanos(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Runs tasks of job `gen` (its low 32 bits) until none are left or another job has started. */
static void run_tasks(unsigned gen) {
    for (;;) {
        unsigned long long state = atomic_load(&job_state);
        if ((unsigned)(state >> 32) != gen) return;
        unsigned index = (unsigned)state;
        int count = atomic_load(&job_count);
        sy_task_fn fn = atomic_load(&job_fn);
        void *ctx = atomic_load(&job_ctx);
        if (index >= (unsigned)count) return;
        /* Succeeds only while job `gen` is still the current one: fn, ctx and count were read for it. */
        if (!atomic_compare_exchange_weak(&job_state, &state, state + 1)) continue;
        fn(ctx, (int)index);
        atomic_fetch_add(&job_done, 1);
    }
}

static void *worker_main(void *arg) {
    (void)arg;
    long seen = atomic_load(&generation);
    for (;;) {
        long start = now_nanos();
        int spins = 0;
        while (atomic_load(&generation) == seen) {
            sy_cpu_relax();
            if (++spins % 256 == 0 && now_nanos() - start > SY_SPIN_NANOS) {
                pthread_mutex_lock(&park_lock);
                atomic_fetch_add(&sleepers, 1);
                while (atomic_load(&generation) == seen) pthread_cond_wait(&park_cond, &park_lock);
                atomic_fetch_sub(&sleepers, 1);
                pthread_mutex_unlock(&park_lock);
                break;
            }
        }
        seen = atomic_load(&generation);
        run_tasks((unsigned)seen);
    }
    return 0;
}

int sy_hardware_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > SY_MAX_THREADS ? SY_MAX_THREADS : (int)n);
}

void sy_set_threads(int n) {
    /* OpenBLAS runs inside this pool's tasks (prefill tiles, larger products), so its own threads
       must be off before the first job: two pools on the same cores slowed a GGUF prefill 3.7x
       when nothing else had made OpenBLAS single-threaded first (no F32 product ran before). */
    sy_blas_single_threaded();
    pthread_mutex_lock(&pool_lock);
    if (n < 1) n = 1;
    if (n > SY_MAX_THREADS) n = SY_MAX_THREADS;
    /* Workers are never stopped; lowering the count only lowers how many tasks a job is split into
       by callers (sy_threads()). Raising it starts more workers. */
    while (worker_count < n - 1) {
        if (pthread_create(&workers[worker_count], 0, worker_main, 0) != 0) break;
        pthread_detach(workers[worker_count]);
        worker_count++;
    }
    requested_threads = n;
    pthread_mutex_unlock(&pool_lock);
}

int sy_threads(void) {
    if (requested_threads == 0) sy_set_threads(sy_hardware_threads());
    return requested_threads;
}

void sy_parallel_for(int count, sy_task_fn fn, void *ctx) {
    if (count <= 0) return;
    if (count == 1 || sy_threads() <= 1 || pthread_mutex_trylock(&pool_lock) != 0) {
        for (int i = 0; i < count; i++) fn(ctx, i);
        return;
    }
    /* Every task of the previous job has finished (its caller waited). First close the state under
       the new generation, so that a claimer still holding the old job's state (its index at the old
       count) cannot succeed against the new count; then describe the job; then open it. */
    unsigned gen = (unsigned)(atomic_load(&generation) + 1);
    atomic_store(&job_state, ((unsigned long long)gen << 32) | SY_JOB_CLOSED);
    atomic_store(&job_fn, fn);
    atomic_store(&job_ctx, ctx);
    atomic_store(&job_count, count);
    atomic_store(&job_done, 0);
    atomic_store(&job_state, (unsigned long long)gen << 32);
    atomic_store(&generation, (long)gen);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&park_lock);
        pthread_cond_broadcast(&park_cond);
        pthread_mutex_unlock(&park_lock);
    }
    run_tasks(gen);
    while (atomic_load(&job_done) < count) sy_cpu_relax();
    pthread_mutex_unlock(&pool_lock);
}
