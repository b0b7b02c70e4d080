/* Byte order and unaligned access for packet headers.
 *
 * Packet fields sit at any alignment (an IPv4 header follows a 14-byte
 * Ethernet header), so every load and store goes through memcpy, which gcc
 * turns into one unaligned move. gn_net16/32 read a big-endian (network
 * order) field and return it in host order; gn_put_net16/32 store one.
 * gn_read_u16/u32 and gn_write_u16/u32 move raw bytes without swapping. */
#ifndef GN_BYTEORDER_H
#define GN_BYTEORDER_H
#include <stdint.h>
#include <string.h>

static inline uint16_t gn_bswap16(uint16_t v) { return __builtin_bswap16(v); }
static inline uint32_t gn_bswap32(uint32_t v) { return __builtin_bswap32(v); }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline uint16_t gn_host_to_net16(uint16_t v) { return __builtin_bswap16(v); }
static inline uint32_t gn_host_to_net32(uint32_t v) { return __builtin_bswap32(v); }
#else
static inline uint16_t gn_host_to_net16(uint16_t v) { return v; }
static inline uint32_t gn_host_to_net32(uint32_t v) { return v; }
#endif
#define gn_net_to_host16 gn_host_to_net16
#define gn_net_to_host32 gn_host_to_net32

static inline uint16_t gn_read_u16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t gn_read_u32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline void gn_write_u16(void *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void gn_write_u32(void *p, uint32_t v) { memcpy(p, &v, 4); }
static inline uint16_t gn_net16(const void *p) { return gn_net_to_host16(gn_read_u16(p)); }
static inline uint32_t gn_net32(const void *p) { return gn_net_to_host32(gn_read_u32(p)); }
static inline void gn_put_net16(void *p, uint16_t v) { gn_write_u16(p, gn_host_to_net16(v)); }
static inline void gn_put_net32(void *p, uint32_t v) { gn_write_u32(p, gn_host_to_net32(v)); }
#endif
