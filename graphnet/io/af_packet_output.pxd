# af-packet-output's function that af-packet-input also calls: retry the tx
# backlog (dropped after tx_retry_limit attempts without progress). See
# af_packet_output.pyx.
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t
from graphnet.io.af_packet_socket cimport afp_t

cdef void afp_tx_retry(gn_main_t* vm, gn_node_runtime_t* node, afp_t* st) noexcept nogil
