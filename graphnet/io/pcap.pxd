# The pcap capture hook, declared in graphnet/vlib/pcap_hook.pxd (read it
# there) and implemented by graphnet.io.pcap; re-exported for device nodes.
from graphnet.vlib.pcap_hook cimport (gn_pcap_main_t, gn_pcap_add_fn, gn_pcap_capture, GN_PCAP_RX, GN_PCAP_TX,
                                      GN_PCAP_DROP)
