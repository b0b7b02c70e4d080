# Declarations of gn_byteorder.h: byte swaps and unaligned field access.
from libc.stdint cimport uint16_t, uint32_t

cdef extern from "gn_byteorder.h" nogil:
    uint16_t gn_bswap16(uint16_t v)
    uint32_t gn_bswap32(uint32_t v)
    uint16_t gn_host_to_net16(uint16_t v)
    uint32_t gn_host_to_net32(uint32_t v)
    uint16_t gn_net_to_host16(uint16_t v)
    uint32_t gn_net_to_host32(uint32_t v)
    uint16_t gn_read_u16(const void* p)       # raw (no swap), any alignment
    uint32_t gn_read_u32(const void* p)
    void gn_write_u16(void* p, uint16_t v)
    void gn_write_u32(void* p, uint32_t v)
    uint16_t gn_net16(const void* p)          # big-endian field -> host order
    uint32_t gn_net32(const void* p)
    void gn_put_net16(void* p, uint16_t v)    # host order -> big-endian field
    void gn_put_net32(void* p, uint32_t v)
