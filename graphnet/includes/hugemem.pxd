# Declarations of gn_hugemem.h: zeroed allocations on transparent huge pages.
cdef extern from "gn_hugemem.h" nogil:
    size_t GN_HUGE_PAGE_SIZE
    size_t gn_huge_size(size_t size)
    void* gn_huge_alloc(size_t size)
    void gn_huge_free(void* p, size_t size)
    void* gn_huge_realloc(void* p, size_t old_size, size_t used, size_t new_size)
