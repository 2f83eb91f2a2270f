/* malloc_count: a preloadable library (LD_PRELOAD) that counts every call a
 * process makes to malloc, calloc, realloc and the aligned allocators, so a
 * test can prove a path of another process allocates nothing.
 *
 * The count lives in a file named by KN_MALLOC_COUNT_FILE (created by the
 * test, at least 8 bytes), mapped shared: the counting process increments
 * it atomically, the test reads it whenever it likes. Without the variable,
 * or if the file cannot be mapped, nothing is counted. The calls are
 * forwarded to the C library's own entry points, so behaviour is unchanged.
 * Not for sanitizer builds (their runtime must come first). */
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static _Atomic uint64_t *counter;

__attribute__((constructor)) static void open_counter(void)
{
    const char *path = getenv("KN_MALLOC_COUNT_FILE");
    if (!path || !*path) return;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    void *p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED) counter = p;
}

static void count(void)
{
    if (counter) atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

void *malloc(size_t n)
{
    count();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    count();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    count();
    return __libc_realloc(p, n);
}

void *memalign(size_t align, size_t n)
{
    count();
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    count();
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    count();
    void *p = __libc_memalign(align, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}
