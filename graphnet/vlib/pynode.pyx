"""Python nodes: the trampoline side that runs a PythonNode on a frame.

The main loop calls ``PythonNodeRuntime._dispatch_frame`` with the GIL, once
per frame. The node sees a ``FrameView``: zero-copy views of the frame's
buffer indices and packet bytes, valid only during that call (the frame and
its buffers move on afterwards; a view used later raises).
"""
import logging

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memset
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_FRAME_SIZE, GN_BUFFER_META_SIZE,
                                   GN_BUFFER_HEADROOM, GN_BUFFER_STRIDE, GN_RX)
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next, gn_buffer_set_error

log = logging.getLogger("graphnet.pynode")


cdef class FrameView:
    """One frame as a Python node sees it (see module docstring).

    ``len(frame)``, ``frame.buffer_indices`` (memoryview of u32),
    ``frame.nexts`` (writable memoryview of u16, one per packet, preset to
    0), ``frame.packet(i)`` (writable memoryview of packet i's bytes from its
    current header), ``frame.length(i)``, ``frame.rx_sw_if_index(i)``,
    ``frame.drop(i, symbol)``, ``frame.packets()``."""
    cdef gn_main_t* vm
    cdef gn_node_runtime_t* rt
    cdef gn_frame_t* frame
    cdef uint16_t* nexts_ptr
    cdef PythonNodeRuntime owner
    cdef bint valid
    cdef readonly object buffer_indices
    cdef readonly object nexts

    def __len__(self):
        self._check()
        return self.frame.n_vectors

    cdef int _check(self) except -1:
        if not self.valid:
            raise RuntimeError("a FrameView is only valid inside process()")
        return 0

    cdef gn_buffer_t* _buf(self, Py_ssize_t i) except NULL:
        self._check()
        if i < 0 or i >= self.frame.n_vectors:
            raise IndexError(i)
        return gn_main_buffer(self.vm, self.frame.buffers[i])

    def packet(self, Py_ssize_t i):
        cdef gn_buffer_t* b = self._buf(i)
        cdef size_t off = <size_t>self.frame.buffers[i] * GN_BUFFER_STRIDE + GN_BUFFER_META_SIZE + GN_BUFFER_HEADROOM + b.current_data
        return self.owner.arena[off:off + b.current_length]

    def packets(self):
        for i in range(len(self)):
            yield self.packet(i)

    def length(self, Py_ssize_t i):
        return self._buf(i).current_length

    def rx_sw_if_index(self, Py_ssize_t i):
        return self._buf(i).sw_if_index[GN_RX]

    def drop(self, Py_ssize_t i, str symbol="none"):
        """Send packet i to error-drop, counted under one of the node's errors."""
        cdef gn_buffer_t* b = self._buf(i)
        try:
            code = self.owner.error_codes[symbol]
        except KeyError:
            raise KeyError(f"node {self.owner.name!r} has no error {symbol!r}") from None
        gn_buffer_set_error(self.rt, b, code)
        self.nexts_ptr[i] = self.rt.drop_next


cdef class PythonNodeRuntime:
    """Binds a PythonNode to the engine; one per Python node."""
    cdef readonly object node
    cdef readonly str name
    cdef readonly object arena
    cdef readonly dict error_codes
    cdef uint16_t nexts[GN_FRAME_SIZE]

    def __init__(self, node, arena, dict error_codes):
        self.node = node
        self.name = node.name
        self.arena = arena
        self.error_codes = error_codes

    def _dispatch_frame(self, size_t vm_addr, size_t rt_addr, size_t frame_addr):
        cdef gn_main_t* vm = <gn_main_t*>vm_addr
        cdef gn_node_runtime_t* rt = <gn_node_runtime_t*>rt_addr
        cdef gn_frame_t* frame = <gn_frame_t*>frame_addr
        cdef uint32_t i, n = frame.n_vectors
        cdef uint16_t nx
        cdef FrameView view = FrameView.__new__(FrameView)
        view.vm = vm
        view.rt = rt
        view.frame = frame
        view.owner = self
        view.nexts_ptr = self.nexts
        view.valid = True
        memset(self.nexts, 0, sizeof(self.nexts))
        view.buffer_indices = memoryview(<uint32_t[:n]>frame.buffers) if n else memoryview(b"").cast("I")
        view.nexts = memoryview(<uint16_t[:n]>self.nexts) if n else memoryview(b"").cast("H")
        try:
            result = self.node.process(view)
            if result is None:
                pass
            elif isinstance(result, int):
                nx = result
                for i in range(n):
                    self.nexts[i] = nx
            else:
                if len(result) != n:
                    raise ValueError(f"process() returned {len(result)} next indices for {n} packets")
                for i in range(n):
                    self.nexts[i] = result[i]
        except BaseException as e:
            # Nothing may escape: the caller is the nogil loop. Drop the
            # frame; a KeyboardInterrupt/SystemExit also stops the loop.
            log.exception("Python node %s raised; dropping its frame of %d packets", self.name, n)
            if not isinstance(e, Exception):
                vm.stop_requested = 1
            code = self.error_codes["python-exception"]
            for i in range(n):
                gn_buffer_set_error(rt, gn_main_buffer(vm, frame.buffers[i]), code)
                self.nexts[i] = rt.drop_next
        finally:
            view.valid = False
            view.buffer_indices.release()
            view.nexts.release()
        gn_enqueue_to_next(vm, rt, frame.buffers, self.nexts, n)
        return n
