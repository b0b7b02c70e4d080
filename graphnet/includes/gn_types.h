/* Core data-plane types: the buffer metadata header and the frame.
 *
 * Invariants:
 *  - A buffer is GN_BUFFER_STRIDE bytes in the arena: 128 bytes of metadata,
 *    GN_BUFFER_HEADROOM bytes of headroom, GN_BUFFER_DATA_SIZE bytes of data,
 *    64 bytes of padding (never used).
 *  - current_data is relative to data[]; it may be negative (down to
 *    -GN_BUFFER_HEADROOM) when headers are pushed into the headroom.
 *  - next_buffer is valid only when GN_BUFFER_F_NEXT_PRESENT is set.
 *  - frames carry u32 buffer indices, never pointers.
 */
#ifndef GN_TYPES_H
#define GN_TYPES_H
#include <stdint.h>
#include <stddef.h>

#define GN_BUFFER_HEADROOM 128
#define GN_BUFFER_DATA_SIZE 2048
#define GN_BUFFER_META_SIZE 128
#define GN_BUFFER_OPAQUE_SIZE 64
#define GN_FRAME_SIZE 256
#define GN_INVALID_INDEX 0xffffffffu

enum {
    GN_BUFFER_F_NEXT_PRESENT = 1u << 0,
    GN_BUFFER_F_TRACED = 1u << 1,
    GN_BUFFER_F_IS_FREE = 1u << 2,
    GN_BUFFER_F_GSO = 1u << 3,
    GN_BUFFER_F_L4_CSUM_OFFLOAD = 1u << 4,
    GN_BUFFER_F_LOCALLY_ORIGINATED = 1u << 5,   /* built by this host (ICMP, ARP, UDP echo): ip4-rewrite keeps its TTL */
    GN_BUFFER_F_USER_0 = 1u << 16,
};

enum { GN_RX = 0, GN_TX = 1 };

typedef struct gn_buffer {
    /* --- first cache line: what nodes touch per packet --- */
    int16_t current_data;            /* offset of the current header from data[] */
    uint16_t current_length;         /* bytes in this buffer from current_data */
    uint32_t flags;                  /* GN_BUFFER_F_* */
    uint32_t next_buffer;            /* chain, if GN_BUFFER_F_NEXT_PRESENT */
    uint32_t total_length_not_including_first_buffer;
    uint32_t sw_if_index[2];         /* [GN_RX], [GN_TX] */
    uint32_t trace_handle;           /* valid if GN_BUFFER_F_TRACED */
    uint16_t error;                  /* global error index (see show errors) */
    int16_t l2_hdr_offset;           /* header offsets relative to data[] */
    int16_t l3_hdr_offset;
    int16_t l4_hdr_offset;
    uint16_t gso_size;               /* segment size of a GSO super-frame */
    uint16_t pad0;
    uint32_t pad1[6];
    /* --- second cache line: protocol opaque (adjacency, tcp seq, ...) --- */
    uint8_t opaque[GN_BUFFER_OPAQUE_SIZE];
    uint8_t pre_data[GN_BUFFER_HEADROOM];
    uint8_t data[GN_BUFFER_DATA_SIZE];
    uint8_t tail_pad[64];            /* stride 37 cache lines: see below */
} gn_buffer_t;

/* The stride is an odd number of cache lines (37): with 36 (2304 bytes) every
 * buffer's first metadata line and first data line fall in the same 16 of
 * the L1's 64 sets, so a 256-buffer frame evicts itself between nodes.
 * Measured on ip4-forward: about 1 ns per packet over the whole path. */
#define GN_BUFFER_STRIDE (sizeof(gn_buffer_t))
/* Bytes of metadata a freshly allocated buffer has set (current_data ..
 * gso_size): a template of this many bytes initialises a buffer. */
#define GN_BUFFER_INIT_BYTES 40
_Static_assert(offsetof(gn_buffer_t, pad0) == GN_BUFFER_INIT_BYTES - 2, "init bytes end with gso_size");
_Static_assert(offsetof(gn_buffer_t, opaque) == 64, "metadata first line is 64 bytes");
_Static_assert(offsetof(gn_buffer_t, pre_data) == GN_BUFFER_META_SIZE, "metadata is 128 bytes");
_Static_assert(sizeof(gn_buffer_t) % 64 == 0, "buffers are cache-line aligned");
_Static_assert((sizeof(gn_buffer_t) / 64) % 2 == 1, "the stride is an odd number of cache lines");

enum { GN_FRAME_F_TRACE = 1u << 0 };

typedef struct gn_frame {
    uint16_t n_vectors;
    uint16_t flags;                  /* GN_FRAME_F_* */
    uint32_t scalar[3];              /* small per-frame arguments */
    uint32_t buffers[GN_FRAME_SIZE];
} gn_frame_t;

static inline gn_buffer_t *gn_buffer_at(uint8_t *base, uint32_t bi) {
    return (gn_buffer_t *)(base + (size_t)bi * GN_BUFFER_STRIDE);
}
static inline uint8_t *gn_buffer_current(gn_buffer_t *b) { return b->data + b->current_data; }
#endif
