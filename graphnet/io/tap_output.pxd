# tap-output's function that tap-input also calls: flush the retry queue
# (written oldest first until EAGAIN; dropped after retry_timeout_ns
# without progress). See tap_output.pyx.
from graphnet.vlib.main cimport gn_main_t
from graphnet.io.tap_tun cimport tap_dev_t

cdef void tap_tx_flush_retry(gn_main_t* vm, tap_dev_t* t) noexcept nogil
