/* Large zeroed allocations backed by transparent huge pages when the
 * kernel allows (THP "madvise" mode): big lookup tables (the mtrie) are
 * read at random per packet, and 2 MB pages keep those reads from missing
 * the TLB. Sizes are rounded up to 2 MB; memory comes from mmap, so it is
 * zeroed and only touched pages cost RAM. Returns NULL on failure. */
#ifndef GN_HUGEMEM_H
#define GN_HUGEMEM_H
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#define GN_HUGE_PAGE_SIZE ((size_t)2 << 20)

static inline size_t gn_huge_size(size_t size) {
    return (size + GN_HUGE_PAGE_SIZE - 1) & ~(GN_HUGE_PAGE_SIZE - 1);
}

static inline void *gn_huge_alloc(size_t size) {
    size_t n = gn_huge_size(size ? size : 1);
    /* over-map by one huge page so the block can start on a 2 MB boundary */
    char *raw = mmap(NULL, n + GN_HUGE_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *p;
    size_t head;
    if (raw == MAP_FAILED)
        return NULL;
    p = (char *)(((size_t)raw + GN_HUGE_PAGE_SIZE - 1) & ~(GN_HUGE_PAGE_SIZE - 1));
    head = (size_t)(p - raw);
    if (head)
        munmap(raw, head);
    if (GN_HUGE_PAGE_SIZE - head)
        munmap(p + n, GN_HUGE_PAGE_SIZE - head);
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE);
#endif
    return p;
}

static inline void gn_huge_free(void *p, size_t size) {
    if (p)
        munmap(p, gn_huge_size(size ? size : 1));
}

/* Grow a block: a new one, the first `used` bytes copied, the old freed. */
static inline void *gn_huge_realloc(void *p, size_t old_size, size_t used, size_t new_size) {
    void *q = gn_huge_alloc(new_size);
    if (q == NULL)
        return NULL;
    if (p) {
        memcpy(q, p, used);
        gn_huge_free(p, old_size);
    }
    return q;
}
#endif
