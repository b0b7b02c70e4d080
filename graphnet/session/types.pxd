# Session-layer types shared by the session layer, the transports and the
# session nodes: endpoints, sessions, events, app messages, the transport
# interface. Engine-local structs may hold pointers; the app messages and
# everything in segments hold offsets only.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from graphnet.session.fifo cimport gn_fifo_t
from graphnet.session.msg_queue cimport gn_mq_handle_t
from graphnet.vlib.buffer cimport gn_buffer_waiter_t

cdef enum:
    GN_SESSION_INVALID_INDEX = 0xffffffff
    GN_SESSION_MAX_THREADS = 64

# Session states, VPP's order: comparisons like ">= TRANSPORT_CLOSING" rely on it.
cdef enum gn_session_state_t:
    GN_SESSION_STATE_CREATED = 0
    GN_SESSION_STATE_LISTENING = 1
    GN_SESSION_STATE_CONNECTING = 2
    GN_SESSION_STATE_ACCEPTING = 3
    GN_SESSION_STATE_READY = 4
    GN_SESSION_STATE_TRANSPORT_CLOSING = 5
    GN_SESSION_STATE_CLOSING = 6
    GN_SESSION_STATE_APP_CLOSED = 7
    GN_SESSION_STATE_TRANSPORT_CLOSED = 8
    GN_SESSION_STATE_CLOSED = 9
    GN_SESSION_STATE_TRANSPORT_DELETED = 10
    GN_SESSION_N_STATES = 11

cdef enum:
    GN_SESSION_F_APP_CLOSED = 1        # the app asked close or reset (once)
    GN_SESSION_F_HALF_OPEN = 2
    GN_SESSION_F_LISTENER = 4
    GN_SESSION_F_CUT_THROUGH = 8
    GN_SESSION_F_DGRAM = 16            # unconnected datagram session (one per listener)
    GN_SESSION_F_TX_QUEUED = 32        # on the tx ring (at most once)
    GN_SESSION_F_WAIT_BUFFERS = 64     # its transport waits for buffers (pool's waiter queue)
    GN_SESSION_F_APP_SHUT_WR = 128     # the app shut its sending side (once): the peer sees end of stream

cdef enum:
    GN_TRANSPORT_PROTO_UDP = 0
    GN_TRANSPORT_PROTO_TCP = 1
    GN_TRANSPORT_PROTO_CT = 2          # cut-through (local) sessions
    GN_TRANSPORT_PROTO_TEST = 3        # the mock transport of the tests
    GN_TRANSPORT_N_PROTOS = 4

cdef enum:
    GN_TRANSPORT_SERVICE_VC = 0        # connections (TCP, connected UDP)
    GN_TRANSPORT_SERVICE_DGRAM = 1     # datagrams (unconnected UDP)

# Events: engine -> app worker (pending list, then message queue or callback).
cdef enum gn_session_evt_t:
    GN_EVT_NONE = 0
    GN_EVT_RX = 1                      # data in the rx fifo
    GN_EVT_TX = 2                      # tx fifo drained past the app's threshold (dequeue notification)
    GN_EVT_ACCEPTED = 3
    GN_EVT_CONNECTED = 4               # retval: 0 or a negative error
    GN_EVT_DISCONNECTED = 5            # the transport is closing (peer closed)
    GN_EVT_TRANSPORT_CLOSED = 6
    GN_EVT_RESET = 7
    GN_EVT_CLEANUP = 8                 # arg: GN_CLEANUP_TRANSPORT / GN_CLEANUP_SESSION
    GN_EVT_BOUND = 9                   # listen reply (retval)
    GN_EVT_UNLISTEN_REPLY = 10
    GN_EVT_ERROR = 11                  # a malformed or unknown app message was refused
    GN_EVT_N = 12

cdef enum:
    GN_CLEANUP_TRANSPORT = 0
    GN_CLEANUP_SESSION = 1

# App -> engine messages (the engine's queue, read by session-queue).
cdef enum:
    GN_APP_MSG_TX = 64                 # data in my tx fifo
    GN_APP_MSG_CLOSE = 65
    GN_APP_MSG_RESET = 66
    GN_APP_MSG_ACCEPTED_REPLY = 67     # retval 0: accept, else reject
    GN_APP_MSG_RX_DONE = 68            # I read; deq notification may be due
    GN_APP_MSG_SHUTDOWN = 69           # half-close: no more data from me after my tx fifo (FIN); I still read

ctypedef struct gn_endpoint_t:
    uint32_t ip                        # IPv4, host byte order; 0 = any
    uint16_t port                      # host byte order
    uint8_t is_ip4
    uint8_t pad

ctypedef struct gn_session_t:
    # Engine-local (not in a segment): may hold pointers. 256 bytes, pools
    # 64-byte aligned, laid out by line for the rx path (which touches
    # lines 1 and 2, and the shared header's tail line):
    # line 0: the buffer waiter (cold) and the tx fifo pointer
    gn_buffer_waiter_t buf_waiter      # first member: the wake callback casts it back
    gn_fifo_t* tx_fifo                 # &tx_h, or NULL
    # line 1: the rx fifo, its pointer and the engine's private handle
    gn_fifo_t* rx_fifo                 # &rx_h once the fifos are allocated, else NULL
    gn_fifo_t rx_h                     # the engine's private handles on the fifos: the geometry
                                       # every engine-side operation uses (never read back from the
                                       # segment; a cut-through pair has a copy each)
    # line 2: what notifications and their messages read
    uint64_t listener_handle           # accepted sessions: their listener
    uint32_t session_index
    uint32_t thread_index
    uint32_t app_wrk_index             # GN_SESSION_INVALID_INDEX: detached
    uint32_t connection_index          # the transport's connection (or listener) index
    uint32_t opaque                    # the app's context for connects
    uint32_t al_index                  # listeners: index in the app-listener table
    uint32_t flags                     # GN_SESSION_F_*
    uint32_t tx_fifo_offset            # tx_h.offset, for the messages (line 3 stays cold on rx)
    uint8_t state
    uint8_t proto
    uint8_t valid
    uint8_t pad
    uint32_t pad1
    uint64_t rx_drops                  # datagrams/bytes refused: rx fifo full
    uint64_t peer_handle               # cut-through: the peer session
    # line 3
    gn_fifo_t tx_h
    uint64_t pad3

cdef extern from *:
    # an event with no session (listen reply, failed connect)
    const uint64_t GN_NO_HANDLE "0xffffffffffffffffULL"

ctypedef struct gn_session_event_t:
    uint8_t type
    uint8_t pad[3]
    int32_t arg
    uint64_t handle
    uint32_t opaque
    uint32_t pad2

ctypedef struct gn_app_msg_t:
    # One message-queue slot (64 bytes); offsets, never pointers.
    uint8_t type                       # GN_EVT_* or GN_APP_MSG_*
    uint8_t proto
    uint16_t state
    int32_t retval                     # connect/listen result, cleanup kind, error code
    uint64_t handle
    uint64_t listener_handle
    uint32_t rx_fifo                   # offsets in the segment below
    uint32_t tx_fifo
    uint32_t segment_index
    uint32_t opaque
    uint32_t lcl_ip
    uint32_t rmt_ip
    uint16_t lcl_port
    uint16_t rmt_port
    uint32_t peer_mq                   # cut-through: the peer worker's queue offset
    uint32_t wrk_index
    uint8_t pad[4]

ctypedef struct gn_transport_connection_t:
    # First member of every transport's connection struct.
    gn_endpoint_t lcl
    gn_endpoint_t rmt
    uint32_t c_index                   # index in the transport's pool
    uint32_t s_index                   # its session's index (GN_SESSION_INVALID_INDEX: none)
    uint32_t thread_index
    uint8_t proto
    uint8_t flags
    uint16_t pad

# The transport interface: a table of C functions per protocol. The session
# layer calls down through it; the transport calls up through session.pxd.
ctypedef int (*gn_tp_listen_fn)(void* ctx, uint32_t session_index, const gn_endpoint_t* lcl) noexcept nogil
ctypedef int (*gn_tp_unlisten_fn)(void* ctx, uint32_t listener_index) noexcept nogil
ctypedef int (*gn_tp_connect_fn)(void* ctx, const gn_endpoint_t* rmt, const gn_endpoint_t* lcl, uint64_t ho_handle) noexcept nogil
ctypedef void (*gn_tp_conn_fn)(void* ctx, uint32_t conn_index, uint32_t thread_index) noexcept nogil
ctypedef uint32_t (*gn_tp_push_fn)(void* ctx, void* vm, void* node, gn_session_t* s, uint32_t max_units) noexcept nogil
ctypedef gn_transport_connection_t* (*gn_tp_get_fn)(void* ctx, uint32_t index, uint32_t thread_index) noexcept nogil
ctypedef int (*gn_tp_format_fn)(void* ctx, uint32_t conn_index, uint32_t thread_index, int verbose,
                                char* buf, uint32_t size) noexcept nogil

ctypedef struct gn_transport_vft_t:
    gn_tp_listen_fn listen             # -> listener index, or < 0
    gn_tp_unlisten_fn unlisten
    gn_tp_connect_fn connect           # -> half-open index, or < 0; may complete at once
    gn_tp_conn_fn close                # graceful: the transport calls closed/delete notify later
    gn_tp_conn_fn reset
    gn_tp_conn_fn cleanup              # free the connection now, no more notifications
    gn_tp_conn_fn shutdown             # half-close: end of stream after the tx data, rx goes on (NULL: none)
    gn_tp_push_fn push_tx              # send from s.tx_fifo, at most max_units; -> units sent
    gn_tp_get_fn get_connection
    gn_tp_get_fn get_listener
    gn_tp_get_fn get_half_open
    gn_tp_format_fn format
    void* ctx
    uint8_t service                    # GN_TRANSPORT_SERVICE_*
    uint8_t registered
    uint8_t stream_tx                  # push_tx owns the tx event and keeps unacked data in the fifo:
                                       # session-queue requeues only a push that used all its units
