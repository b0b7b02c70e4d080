"""pcap: capture of rx / tx / drop packets to a file, and the ``pcap``
interface kind that replays a file as input and writes its output to one.

Capture (``pcap trace rx tx drop [max N] [file F] [overwrite]``, ``pcap trace off``)
------------------------------------------------------------------------------------
Each engine has one capture state, a ``gn_pcap_main_t`` (see pcap.pxd)
owned by ``PcapMain`` (``pcap_main(engine)``). Device input nodes call
``gn_pcap_capture(pm, vm, bis, n, GN_PCAP_RX, sw_if_index)`` on the
buffers they received, device tx nodes with ``GN_PCAP_TX`` on the buffers
they are about to send, and ``error-drop`` with ``GN_PCAP_DROP``. When
capture is off that is one branch per frame. When it is on, each packet
(its chain flattened, cut at ``snaplen``) becomes a pcap record appended in
C to a memory buffer; the buffer is written to the file with write() when
it holds ``flush_bytes`` (256 KiB), when ``max_packets`` is reached (the
capture then stops by itself; the file is complete), on ``stop()``, on
every ``status()`` (``show pcap``, ``pcap trace status``) and at least
once a second while a capture is open: the process node ``pcap-flush``
(in every engine) sleeps on the loop's timer wheel while a capture runs
and waits for an event otherwise, so an idle engine does not wake for it.
A file is readable (tshark, ``read_pcap``) while the capture runs.
The GIL is never taken per packet.

The file (``_open_file``) is opened with O_CREAT | O_EXCL | O_NOFOLLOW,
mode 0600: a symbolic link or any existing file is refused, so a
capture never writes through a link another user planted (graphnet often
runs as root). ``overwrite`` (the CLI word, the ``overwrite=True``
argument) replaces an existing file only if it is a regular file with one
link, owned by the engine's user, and empty or a pcap/pcapng file; the
last component is still never followed. A bare file name goes to the
private pcap directory ``default_pcap_dir()``: ``$GRAPHNET_PCAP_DIR``,
else ``<runtime dir>/pcap`` (``/run/graphnet/pcap`` as root, see
graphnet.paths), created 0700 and refused if another user could write to
it. A path with a ``/`` is taken as given, with the same care: its last
component is never followed, and the directories above it are reached
through symbolic links only when those belong to root or to the engine's
user (graphnet.paths.open_dir): another user's link on the way is
refused. A file that cannot be created is a one-line PcapFileError (a ValueError: the CLI answers with it, exit
status 1 from ``graphnet ctl``, no traceback in the engine's log).

The file is a classic pcap (LINKTYPE_ETHERNET, version 2.4, host byte
order) with microsecond (magic a1b2c3d4) or nanosecond (a1b23c4d)
timestamps taken from CLOCK_REALTIME once per frame. A drop is recorded
from its Ethernet header when the node that dropped it had advanced
``current_data`` past ``l2_hdr_offset`` (received packets only), as VPP does.

Python: ``PcapTrace(engine).start(rx=True, tx=True, drop=True,
max_packets=10000, path=..., snaplen=65535, interface=None,
nanosecond=False, overwrite=False)``, ``.stop() -> path``, ``.status()``. CLI:
``pcap_trace_command(engine, args)`` implements ``pcap trace ...``.

The pcap interface (``PcapDevice``)
-----------------------------------
``PcapDevice(engine, name, input_path=..., output_path=...)``: node
``pcap-input-<name>`` (input; polling by default when it has a file) emits the packets of the
input file in order, up to 256 per call, and sets ``has_more_work`` until
the file is consumed (``repeat`` times), so ``run_until_idle`` runs exactly
until the replay is done. ``pcap-output-<name>`` appends every packet it
is given to the output file (timestamps: now) and frees it.
"""
import errno as _errno
import logging
import os
import stat
import struct
import time

from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, memset
from posix.time cimport clock_gettime, timespec, CLOCK_REALTIME
from posix.unistd cimport write, close
from graphnet.includes.linux cimport errno, EINTR
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_RX, GN_TX, GN_BUFFER_HEADROOM, GN_BUFFER_F_NEXT_PRESENT,
                                   GN_INVALID_INDEX, GN_FRAME_SIZE, gn_buffer_current)
from graphnet.io.growbuf cimport gn_reserve
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc, gn_main_free,
                                 gn_enqueue_to_single_next, gn_enqueue_to_next, gn_buffer_set_error,
                                 gn_node_increment_error, gn_node_set_interrupt_pending, GN_NODE_INTERRUPT)
from graphnet.io.interface cimport gn_interface_t
from graphnet.io.bufcopy cimport gn_copy_to_chain, gn_chain_length, gn_copy_from_chain
from graphnet.vlib.node import Node
from graphnet.vlib.process import Sleep, WaitEvent
from graphnet.vlib.kit cimport gn_node_fn
from graphnet.vlib.kit import node
from graphnet.vlib.drop import set_drop_capture
from graphnet.vlib.engine import register_extension
from graphnet.io.device import DefaultNext, Device, DeviceError
from graphnet.paths import UnsafePathError, open_dir, private_dir, runtime_dir

log = logging.getLogger("graphnet.pcap")

cdef enum:
    PCAP_HDR_SIZE = 24
    PCAP_REC_SIZE = 16
    DEFAULT_FLUSH_BYTES = 256 * 1024
    LINKTYPE_ETHERNET = 1

PCAP_MAGIC_US = 0xa1b2c3d4
PCAP_MAGIC_NS = 0xa1b23c4d
DEFAULT_MAX_PACKETS = 10000
DEFAULT_SNAPLEN = 65535
KINDS = ("rx", "tx", "drop")
FLUSH_INTERVAL = 1.0           # seconds: the longest a captured packet waits for write()
ENV_PCAP_DIR = "GRAPHNET_PCAP_DIR"
FLUSH_NODE = "pcap-flush"


class PcapFileError(ValueError):
    """A capture file that cannot (or must not) be written; one line for users."""


# --- writing records (shared by the capture and pcap-output) -----------------

cdef void _write_out(gn_pcap_main_t* pm) noexcept nogil:
    """Write the buffered records to the file (all of them, or count an
    error and drop them: a capture never blocks the loop on a bad disk)."""
    cdef uint64_t off = 0
    cdef ssize_t k
    while off < pm.used and pm.fd >= 0:
        k = write(pm.fd, pm.buf + off, pm.used - off)
        if k < 0:
            if errno == EINTR:
                continue
            pm.n_write_errors += 1
            pm.last_errno = errno
            break
        off += k
        pm.n_bytes_written += k
    pm.used = 0


cdef inline void _now(uint32_t* sec, uint32_t* frac, bint nanosecond) noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    sec[0] = <uint32_t>ts.tv_sec
    frac[0] = <uint32_t>ts.tv_nsec if nanosecond else <uint32_t>(ts.tv_nsec // 1000)


cdef int _append(gn_pcap_main_t* pm, gn_main_t* vm, uint32_t bi, uint32_t sec, uint32_t frac,
                 bint from_l2) noexcept nogil:
    """Append one packet as a pcap record; -1 if memory ran out."""
    cdef gn_buffer_t* b = gn_main_buffer(vm, bi)
    cdef uint32_t orig = gn_chain_length(vm, bi), incl, rewind = 0, k
    cdef uint32_t* rec
    if from_l2 and b.l2_hdr_offset < b.current_data and b.l2_hdr_offset >= -GN_BUFFER_HEADROOM \
            and b.sw_if_index[GN_RX] != GN_INVALID_INDEX:
        rewind = <uint32_t>(b.current_data - b.l2_hdr_offset)
        orig += rewind
    incl = orig if orig < pm.snaplen else pm.snaplen
    if gn_reserve(&pm.buf, &pm.cap, pm.used, PCAP_REC_SIZE + incl) != 0:
        return -1
    rec = <uint32_t*>(pm.buf + pm.used)
    rec[0] = sec
    rec[1] = frac
    rec[2] = incl
    rec[3] = orig
    pm.used += PCAP_REC_SIZE
    k = 0
    if rewind:
        k = rewind if rewind < incl else incl
        memcpy(pm.buf + pm.used, gn_buffer_current(b) - rewind, k)
    if incl > k:
        gn_copy_from_chain(vm, bi, pm.buf + pm.used + k, incl - k)
    pm.used += incl
    return 0


cdef void _capture_add(gn_pcap_main_t* pm, gn_main_t* vm, const uint32_t* bis, uint32_t n, uint32_t what,
                       uint32_t sw_if_index) noexcept nogil:
    """The capture hook (pm.add): called by gn_pcap_capture when `what` is on."""
    cdef uint32_t sec, frac, i
    cdef uint32_t kind = 0 if what == GN_PCAP_RX else (1 if what == GN_PCAP_TX else 2)
    cdef gn_buffer_t* b
    if pm.sw_if_index != GN_INVALID_INDEX and sw_if_index != GN_INVALID_INDEX and sw_if_index != pm.sw_if_index:
        return
    _now(&sec, &frac, pm.nanosecond)
    for i in range(n):
        if pm.max_packets and pm.n_captured >= pm.max_packets:
            break
        if pm.sw_if_index != GN_INVALID_INDEX and sw_if_index == GN_INVALID_INDEX:
            b = gn_main_buffer(vm, bis[i])
            if b.sw_if_index[GN_RX] != pm.sw_if_index and b.sw_if_index[GN_TX] != pm.sw_if_index:
                continue
        if _append(pm, vm, bis[i], sec, frac, what == GN_PCAP_DROP) != 0:
            pm.n_no_memory += 1
            continue
        pm.n_captured += 1
        pm.n_by_kind[kind] += 1
    if pm.max_packets and pm.n_captured >= pm.max_packets:
        pm.flags = 0
        pm.done = 1
        _write_out(pm)
    elif pm.used >= pm.flush_bytes:
        _write_out(pm)


def pcap_file_header(uint32_t snaplen=DEFAULT_SNAPLEN, bint nanosecond=False, uint32_t linktype=LINKTYPE_ETHERNET):
    """The 24-byte pcap file header (host byte order)."""
    return struct.pack("=IHHiIII", PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, linktype)


cdef int _init_writer(gn_pcap_main_t* pm) except -1:
    memset(pm, 0, sizeof(gn_pcap_main_t))
    pm.fd = -1
    pm.sw_if_index = GN_INVALID_INDEX
    pm.snaplen = DEFAULT_SNAPLEN
    pm.flush_bytes = DEFAULT_FLUSH_BYTES
    pm.add = _capture_add
    return 0


cdef void _close_writer(gn_pcap_main_t* pm) noexcept nogil:
    _write_out(pm)
    if pm.fd >= 0:
        close(pm.fd)
        pm.fd = -1


_PCAP_MAGICS = {struct.pack(e + "I", m) for e in "<>" for m in (PCAP_MAGIC_US, PCAP_MAGIC_NS)} | {b"\n\r\r\n"}


def _reopen_existing(path, name, dfd):
    """An fd on the existing file name in directory dfd, truncated, if
    overwriting it is safe (see the module docstring); PcapFileError otherwise."""
    try:
        fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except OSError as e:
        if e.errno == _errno.ELOOP:
            raise PcapFileError(f"{path} is a symbolic link; refusing to follow it") from None
        raise PcapFileError(f"cannot open {path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PcapFileError(f"{path} is not a regular file; refusing to overwrite it")
        if st.st_uid != os.geteuid():
            raise PcapFileError(f"{path} belongs to another user (uid {st.st_uid}); refusing to overwrite it")
        if st.st_nlink != 1:
            raise PcapFileError(f"{path} has {st.st_nlink} hard links; refusing to overwrite it")
        if st.st_size and os.pread(fd, 4, 0) not in _PCAP_MAGICS:
            raise PcapFileError(f"{path} is not a pcap file; refusing to overwrite it")
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
    except PcapFileError:
        os.close(fd)
        raise
    except OSError as e:
        os.close(fd)
        raise PcapFileError(f"cannot overwrite {path}: {e.strerror}") from None
    return fd


def _open_file(path, snaplen, nanosecond, overwrite=False):
    """Create path (mode 0600, never through a symbolic link of another
    user on the way nor any link at its end; an existing file only with
    overwrite) and write the file header; returns the fd. Raises
    PcapFileError with a one-line message."""
    path = os.fspath(path)
    directory, name = os.path.split(path)
    if name in ("", ".", ".."):
        raise PcapFileError(f"{path!r} does not name a file")
    try:
        dfd = open_dir(directory or ".")
    except UnsafePathError as e:
        raise PcapFileError(str(e)) from None
    except OSError as e:
        raise PcapFileError(f"cannot create {path}: {e.strerror}") from None
    try:
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dfd)
        except FileExistsError:
            if stat.S_ISLNK(os.lstat(name, dir_fd=dfd).st_mode):
                raise PcapFileError(f"{path} is a symbolic link; refusing to follow it") from None
            if not overwrite:
                raise PcapFileError(f"{path} exists; add 'overwrite' to replace it, or choose another file") from None
            fd = _reopen_existing(path, name, dfd)
        except OSError as e:
            hint = " (choose a directory the engine's user can write to)" if e.errno == _errno.EACCES else ""
            raise PcapFileError(f"cannot create {path}: {e.strerror}{hint}") from None
    finally:
        os.close(dfd)
    try:
        os.write(fd, pcap_file_header(snaplen, nanosecond))
    except OSError as e:
        os.close(fd)
        raise PcapFileError(f"cannot write {path}: {e.strerror}") from None
    return fd


def default_pcap_dir():
    """Where a bare capture file name goes: $GRAPHNET_PCAP_DIR, else
    <runtime dir>/pcap (/run/graphnet/pcap as root; see graphnet.paths)."""
    return os.environ.get(ENV_PCAP_DIR) or os.path.join(runtime_dir(), "pcap")


def capture_path(path, kinds):
    """The file a capture writes: path as given when it has a '/', a bare
    name (or None: graphnet-<kinds>.pcap) in default_pcap_dir(), which is
    created 0700 (PcapFileError if it cannot be trusted)."""
    if path is None:
        path = f"graphnet-{'-'.join(kinds)}.pcap"
    path = os.fspath(path)
    if os.sep in path:
        return path
    if path in ("", ".", ".."):
        raise PcapFileError(f"{path!r} is not a file name")
    try:
        d = private_dir(default_pcap_dir(), "pcap directory")
    except (UnsafePathError, OSError) as e:
        raise PcapFileError(str(e)) from None
    return os.path.join(str(d), path)


# --- the per-engine capture state --------------------------------------------

cdef class PcapMain:
    """Owns an engine's gn_pcap_main_t; made by ``pcap_main(engine)``."""
    cdef gn_pcap_main_t* pm
    cdef readonly object path
    cdef readonly tuple kinds
    cdef readonly double started

    def __cinit__(self):
        self.pm = <gn_pcap_main_t*>calloc(1, sizeof(gn_pcap_main_t))
        if self.pm == NULL:
            raise MemoryError()
        _init_writer(self.pm)
        self.kinds = ()

    def __dealloc__(self):
        if self.pm != NULL:
            _close_writer(self.pm)
            free(self.pm.buf)
            free(self.pm)

    @property
    def address(self):
        return <size_t>self.pm

    def capsule(self):
        return PyCapsule_New(<void*>self.pm, "gn_runtime_data", NULL)

    @property
    def active(self):
        return self.pm.flags != 0

    def start(self, path, kinds, uint64_t max_packets, uint32_t snaplen, bint nanosecond, uint32_t sw_if_index,
              bint overwrite=False):
        """Loop thread only (PcapTrace goes through engine.call). The file
        is opened before a running capture is stopped: a refused file
        leaves the running capture as it was."""
        cdef uint32_t flags = 0
        fd = _open_file(path, snaplen, nanosecond, overwrite)
        if self.pm.fd >= 0:
            self.stop()
        for k in kinds:
            flags |= {"rx": GN_PCAP_RX, "tx": GN_PCAP_TX, "drop": GN_PCAP_DROP}[k]
        self.pm.fd = fd
        self.pm.used = 0
        self.pm.snaplen = snaplen
        self.pm.nanosecond = nanosecond
        self.pm.max_packets = max_packets
        self.pm.sw_if_index = sw_if_index
        self.pm.n_captured = 0
        self.pm.n_by_kind[0] = self.pm.n_by_kind[1] = self.pm.n_by_kind[2] = 0
        self.pm.n_bytes_written = PCAP_HDR_SIZE
        self.pm.n_write_errors = 0
        self.pm.n_no_memory = 0
        self.pm.done = 0
        self.path = path
        self.kinds = tuple(kinds)
        self.started = time.time()
        self.pm.flags = flags

    def stop(self):
        """Stop capturing, write what is buffered, close the file; returns
        its path (None if no capture was started)."""
        self.pm.flags = 0
        _close_writer(self.pm)
        return self.path

    def flush(self):
        """Write the buffered records to the file (loop thread only)."""
        _write_out(self.pm)

    def status(self):
        """The capture's state; flushes first, so the counts are in the file."""
        pm = self.pm
        _write_out(pm)
        return {"active": pm.flags != 0, "done": bool(pm.done), "path": self.path, "kinds": self.kinds,
                "captured": pm.n_captured, "rx": pm.n_by_kind[0], "tx": pm.n_by_kind[1], "drop": pm.n_by_kind[2],
                "max_packets": pm.max_packets, "snaplen": pm.snaplen, "nanosecond": bool(pm.nanosecond),
                "sw_if_index": None if pm.sw_if_index == GN_INVALID_INDEX else pm.sw_if_index,
                "bytes_written": pm.n_bytes_written + pm.used if pm.fd >= 0 else pm.n_bytes_written,
                "write_errors": pm.n_write_errors, "no_memory": pm.n_no_memory,
                "last_error": os.strerror(pm.last_errno) if pm.last_errno else None}

    def close(self):
        self.stop()


def pcap_main(engine):
    """The engine's PcapMain (created on first use; closed with the engine).
    Once the graph is built, error-drop's drop capture points at it."""
    pm = engine.__dict__.get("_pcap_main")
    if pm is None:
        pm = PcapMain()
        engine._pcap_main = pm
        engine.on_close.append(pm.close)
    if engine.main is not None and not engine.__dict__.get("_pcap_drop_attached"):
        set_drop_capture(engine, pm.address)
        engine._pcap_drop_attached = True
    return pm


def _flush_process(engine):
    """pcap-flush: while a capture runs, write what is buffered every
    FLUSH_INTERVAL seconds (a timer on the loop's wheel); otherwise wait,
    without a timer, for PcapTrace.start() to raise our interrupt (a
    capture that reached its max has written everything already)."""
    pm = pcap_main(engine)
    while True:
        if pm.active:
            yield Sleep(FLUSH_INTERVAL)
            pm.flush()
        else:
            yield WaitEvent(interrupts=True)


NODES = (Node(FLUSH_NODE, type="process", process=_flush_process,
              doc="Writes the pcap capture's buffered packets to its file once a second while a capture "
                  "is open (pcap trace); sleeps without a timer otherwise."),)


@register_extension
def _engine_pcap_flush(engine):
    """Every engine's pcap-flush process (vlib reaches it through this hook)."""
    engine.add(NODES)


def pcap_main_address(engine):
    """Address of the engine's gn_pcap_main_t, for device nodes' C state."""
    return pcap_main(engine).address


class PcapTrace:
    """Capture of rx / tx / drop packets of an engine to a pcap file.

        t = PcapTrace(engine)
        t.start(rx=True, tx=True, drop=True, max_packets=1000, path="/tmp/x.pcap")
        ...
        path = t.stop()

    Safe from any thread (the state changes run in the loop thread). Only
    one capture per engine runs at a time: start() ends a running one.
    """

    def __init__(self, engine):
        self.engine = engine

    def start(self, rx: bool = True, tx: bool = True, drop: bool = True, *, max_packets: int = DEFAULT_MAX_PACKETS,
              path=None, snaplen: int = DEFAULT_SNAPLEN, interface=None, nanosecond: bool = False,
              overwrite: bool = False) -> str:
        """Start capturing; returns the file's path. ``max_packets`` 0: no
        limit. ``interface``: only packets received or sent by it (a name or
        sw_if_index). ``path`` default: graphnet-<rx|tx|drop...>.pcap in
        default_pcap_dir(); a bare file name goes there too (as vppctl puts
        it in /tmp). An existing file is refused (PcapFileError) unless
        ``overwrite``; a symbolic link always is."""
        kinds = tuple(k for k, on in zip(KINDS, (rx, tx, drop)) if on)
        if not kinds:
            raise ValueError("pcap trace: choose at least one of rx, tx, drop")
        if max_packets < 0:
            raise ValueError("max_packets must be >= 0")
        if not 1 <= snaplen <= 0x3fffffff:
            raise ValueError("snaplen must be positive")
        sw = 0xffffffff
        if interface is not None:
            sw = self.engine.interfaces.index(interface)
        path = capture_path(path, kinds)
        self.engine.build()
        pm = pcap_main(self.engine)             # (built: error-drop's capture points at it)
        try:
            self.engine.call(pm.start, path, kinds, max_packets, snaplen, nanosecond, sw, overwrite)
        except PcapFileError as e:
            log.info("pcap trace: %s", e)
            raise
        if FLUSH_NODE in self.engine.index:
            self.engine.main.set_interrupt_pending(self.engine.index[FLUSH_NODE])
        return path

    def stop(self):
        """Stop; returns the path of the file written (None if none was)."""
        return self.engine.call(pcap_main(self.engine).stop)

    def status(self) -> dict:
        return self.engine.call(pcap_main(self.engine).status)

    @property
    def active(self) -> bool:
        return self.status()["active"]


PCAP_TRACE_USAGE = ("pcap trace [rx] [tx] [drop] [max <n>] [file <name>] [overwrite] [intfc <interface>] "
                    "[snaplen <n>] [ns] | pcap trace off | pcap trace status")


def _status_text(st) -> str:
    """One line: where the capture is and how many packets the file holds."""
    errors = (f"; {st['write_errors']} write errors (last: {st['last_error']})" if st["write_errors"] else "")
    if not st["active"]:
        if st["path"] is None:
            return "pcap capture: off"
        return (f"pcap capture: off ({'max reached, ' if st['done'] else ''}{st['captured']} packets "
                f"in {st['path']}{'' if not st['done'] else '; pcap trace off closes it'}){errors}")
    return (f"pcap capture: {' '.join(st['kinds'])} to {st['path']}: {st['captured']} packets in the file so far, "
            f"max {st['max_packets'] or 'unlimited'} (rx {st['rx']}, tx {st['tx']}, drop {st['drop']}){errors}")


def pcap_trace_command(engine, args) -> str:
    """The ``pcap trace`` CLI command: ``fn(engine, args) -> text``.

    ``pcap trace rx tx drop max 100 file x.pcap`` starts, ``pcap trace off``
    stops and says where the file is, ``pcap trace status`` reports. Bad
    arguments raise ValueError with the usage."""
    args = list(args)
    t = PcapTrace(engine)
    if args == ["off"]:
        st = t.status()
        path = t.stop()
        if path is None:
            return "No pcap capture was running"
        return f"Wrote {st['captured']} packets to {path}"
    if args == ["status"] or not args:
        return _status_text(t.status())
    kw = {"rx": False, "tx": False, "drop": False}
    opts = {}
    i = 0
    while i < len(args):
        w = args[i]
        if w in kw:
            kw[w] = True
            i += 1
        elif w == "ns":
            opts["nanosecond"] = True
            i += 1
        elif w == "overwrite":
            opts["overwrite"] = True
            i += 1
        elif w in ("max", "file", "intfc", "interface", "snaplen", "max-bytes-per-pkt") and i + 1 < len(args):
            v = args[i + 1]
            if w == "max":
                opts["max_packets"] = _int_arg(v, "max")
            elif w in ("snaplen", "max-bytes-per-pkt"):
                opts["snaplen"] = _int_arg(v, "snaplen")
            elif w == "file":
                opts["path"] = v
            else:
                opts["interface"] = v
            i += 2
        else:
            raise ValueError(f"pcap trace: unexpected {w!r}; usage: {PCAP_TRACE_USAGE}")
    if not any(kw.values()):
        raise ValueError(f"pcap trace: choose at least one of rx, tx, drop; usage: {PCAP_TRACE_USAGE}")
    path = t.start(**kw, **opts)
    kinds = " ".join(k for k in KINDS if kw[k])
    return (f"pcap capture of {kinds} started: {path}, 0 packets so far "
            f"(written out every second; `show pcap` for the count)")


def _int_arg(v, what):
    try:
        n = int(v, 0)
    except ValueError:
        raise ValueError(f"pcap trace: {what} takes a number, not {v!r}") from None
    if n < 0:
        raise ValueError(f"pcap trace: {what} must be >= 0")
    return n


# --- reading pcap files ------------------------------------------------------

def read_pcap(path):
    """[(timestamp float, bytes)] of an Ethernet pcap (classic pcap in
    either byte order, us or ns; pcapng through Scapy)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DeviceError(f"cannot read pcap file {path}: {e.strerror}") from None
    if len(data) < PCAP_HDR_SIZE:
        raise DeviceError(f"{path}: not a pcap file (too short)")
    magic_le = struct.unpack_from("<I", data)[0]
    magic_be = struct.unpack_from(">I", data)[0]
    if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        end, magic = "<", magic_le
    elif magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        end, magic = ">", magic_be
    elif magic_le == 0x0a0d0d0a:
        return _read_pcapng(path)
    else:
        raise DeviceError(f"{path}: not a pcap file (magic {magic_le:#010x})")
    _, _, _, _, _, linktype = struct.unpack_from(end + "HHiIII", data, 4)
    if linktype & 0xffff != LINKTYPE_ETHERNET:
        raise DeviceError(f"{path}: link type {linktype & 0xffff}, only Ethernet (1) is supported")
    div = 1e9 if magic == PCAP_MAGIC_NS else 1e6
    rec = struct.Struct(end + "IIII")
    out = []
    off = PCAP_HDR_SIZE
    while off + 16 <= len(data):
        sec, frac, incl, orig = rec.unpack_from(data, off)
        off += 16
        if off + incl > len(data):
            log.warning("%s: last record truncated (%d of %d bytes); ignored", path, len(data) - off, incl)
            break
        out.append((sec + frac / div, data[off:off + incl]))
        off += incl
    return out


def _read_pcapng(path):
    try:
        from scapy.utils import PcapNgReader
        out = []
        with PcapNgReader(path) as r:
            for p in r:
                out.append((float(p.time), bytes(p)))
        return out
    except Exception as e:
        raise DeviceError(f"{path}: cannot read pcapng: {e}") from None


def write_pcap(path, packets, nanosecond=False):
    """Write packets (bytes or Scapy packets) as an Ethernet pcap, stamped now."""
    t = time.time()
    with open(path, "wb") as f:
        f.write(pcap_file_header(DEFAULT_SNAPLEN, nanosecond))
        for p in packets:
            p = bytes(p)
            sec = int(t)
            frac = int((t - sec) * (1e9 if nanosecond else 1e6))
            f.write(struct.pack("=IIII", sec, frac, len(p), len(p)))
            f.write(p)


# --- the pcap interface ------------------------------------------------------



cpdef enum InputError:
    IN_ERROR_NONE, IN_ERROR_SHORT_FRAME, IN_ERROR_TOO_BIG, IN_ERROR_NO_BUFFERS, IN_N_ERROR
cpdef enum OutputError:
    OUT_ERROR_NONE, OUT_ERROR_WRITE_ERROR, OUT_N_ERROR

PCAP_INPUT_ERRORS = (
    ("none", "info", "no error"),
    ("short-frame", "error", "frame shorter than an Ethernet header"),
    ("too-big", "error", "frame longer than the interface MTU"),
    ("no-buffers", "warn", "no buffers; replay retried on the next call"),
)
PCAP_OUTPUT_ERRORS = (
    ("none", "info", "no error"),
    ("write-error", "error", "could not write the pcap file"),
)

ctypedef struct pcap_dev_t:
    gn_interface_t* hw
    gn_pcap_main_t* trace         # the engine's capture hook
    uint32_t sw_if_index
    uint32_t max_frame            # MTU + Ethernet header + one VLAN tag
    # input
    uint8_t* data
    uint64_t* offsets             # packet i is data[offsets[i]:offsets[i+1]]
    uint32_t n_packets
    uint32_t next_packet
    uint32_t repeat               # passes over the file still to make
    # output
    gn_pcap_main_t out            # writer of the output file (flags unused)


cdef uint32_t pcap_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef pcap_dev_t* d = <pcap_dev_t*>node.runtime_data
    cdef uint32_t bis[GN_FRAME_SIZE]
    cdef uint32_t ok[GN_FRAME_SIZE]
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t n, got, i, length, n_ok = 0
    cdef uint64_t rx_bytes = 0, n_short = 0, n_big = 0
    cdef gn_buffer_t* b
    cdef const uint8_t* src
    if d == NULL or d.repeat == 0 or not d.hw.admin_up:
        node.has_more_work = 0
        return 0
    n = d.n_packets - d.next_packet
    if n > GN_FRAME_SIZE:
        n = GN_FRAME_SIZE
    got = gn_main_alloc(vm, bis, n)
    if got < n:
        gn_node_increment_error(vm, node, IN_ERROR_NO_BUFFERS, n - got)
    for i in range(got):
        src = d.data + d.offsets[d.next_packet]
        length = <uint32_t>(d.offsets[d.next_packet + 1] - d.offsets[d.next_packet])
        d.next_packet += 1
        b = gn_main_buffer(vm, bis[i])
        b.sw_if_index[GN_RX] = d.sw_if_index
        if length < 14:
            n_short += 1
            gn_buffer_set_error(node, b, IN_ERROR_SHORT_FRAME)
            nexts[i] = node.drop_next
            continue
        if length > d.max_frame:
            n_big += 1
            gn_buffer_set_error(node, b, IN_ERROR_TOO_BIG)
            nexts[i] = node.drop_next
            continue
        if gn_copy_to_chain(vm, bis[i], src, length) != 0:
            gn_buffer_set_error(node, b, IN_ERROR_NO_BUFFERS)
            nexts[i] = node.drop_next
            continue
        nexts[i] = 0
        ok[n_ok] = bis[i]
        n_ok += 1
        rx_bytes += length
    if d.next_packet == d.n_packets:
        d.next_packet = 0
        d.repeat -= 1
    d.hw.counters.rx_packets += n_ok
    d.hw.counters.rx_bytes += rx_bytes
    d.hw.counters.rx_drops += got - n_ok
    gn_pcap_capture(d.trace, vm, ok, n_ok, GN_PCAP_RX, d.sw_if_index)
    gn_enqueue_to_next(vm, node, bis, nexts, got)
    node.has_more_work = d.repeat != 0
    if node.has_more_work and node.state == GN_NODE_INTERRUPT:
        gn_node_set_interrupt_pending(vm, node.node_index)
    return got


cdef uint32_t pcap_output_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef pcap_dev_t* d = <pcap_dev_t*>node.runtime_data
    cdef uint32_t i, sec, frac, n = frame.n_vectors
    cdef uint64_t tx_bytes = 0, errors0
    gn_pcap_capture(d.trace, vm, frame.buffers, n, GN_PCAP_TX, d.sw_if_index)
    if d.out.fd >= 0:
        _now(&sec, &frac, d.out.nanosecond)
        errors0 = d.out.n_write_errors
        for i in range(n):
            tx_bytes += gn_chain_length(vm, frame.buffers[i])
            if _append(&d.out, vm, frame.buffers[i], sec, frac, False) != 0:
                d.out.n_no_memory += 1
                d.hw.counters.tx_errors += 1
                gn_node_increment_error(vm, node, OUT_ERROR_WRITE_ERROR, 1)
        if d.out.used >= d.out.flush_bytes:
            _write_out(&d.out)
        if d.out.n_write_errors != errors0:
            d.hw.counters.tx_errors += d.out.n_write_errors - errors0
            gn_node_increment_error(vm, node, OUT_ERROR_WRITE_ERROR, d.out.n_write_errors - errors0)
    else:
        for i in range(n):
            tx_bytes += gn_chain_length(vm, frame.buffers[i])
    d.hw.counters.tx_packets += n
    d.hw.counters.tx_bytes += tx_bytes
    gn_main_free(vm, frame.buffers, n)
    return n


cdef class _PcapDevState:
    """Owns a pcap_dev_t."""
    cdef pcap_dev_t* d

    def __cinit__(self):
        self.d = <pcap_dev_t*>calloc(1, sizeof(pcap_dev_t))
        if self.d == NULL:
            raise MemoryError()
        _init_writer(&self.d.out)

    def __dealloc__(self):
        if self.d != NULL:
            _close_writer(&self.d.out)
            free(self.d.out.buf)
            free(self.d.data)
            free(self.d.offsets)
            free(self.d)

    def load(self, list packets, uint32_t repeat):
        cdef bytes blob = b"".join(packets)
        cdef uint64_t off = 0
        cdef uint32_t i
        free(self.d.data)
        free(self.d.offsets)
        self.d.data = <uint8_t*>malloc(max(1, len(blob)))
        self.d.offsets = <uint64_t*>malloc((len(packets) + 1) * sizeof(uint64_t))
        if self.d.data == NULL or self.d.offsets == NULL:
            raise MemoryError()
        memcpy(self.d.data, <const uint8_t*>blob, len(blob))
        for i in range(len(packets)):
            self.d.offsets[i] = off
            off += len(packets[i])
        self.d.offsets[len(packets)] = off
        self.d.n_packets = len(packets)
        self.d.next_packet = 0
        self.d.repeat = repeat if packets else 0

    def open_output(self, path, bint nanosecond):
        self.d.out.fd = _open_file(path, DEFAULT_SNAPLEN, nanosecond, overwrite=True)
        self.d.out.nanosecond = nanosecond
        self.d.out.n_bytes_written = PCAP_HDR_SIZE

    def flush(self):
        _write_out(&self.d.out)

    def close_output(self):
        _close_writer(&self.d.out)

    def setup(self, size_t hw, size_t trace, uint32_t sw_if_index, uint32_t max_frame):
        self.d.hw = <gn_interface_t*>hw
        self.d.trace = <gn_pcap_main_t*>trace
        self.d.sw_if_index = sw_if_index
        self.d.max_frame = max_frame

    def capsule(self):
        return PyCapsule_New(<void*>self.d, "gn_runtime_data", NULL)

    def stats(self):
        return {"packets_left": (self.d.n_packets - self.d.next_packet
                                 + (self.d.repeat - 1) * self.d.n_packets) if self.d.repeat else 0,
                "input_packets": self.d.n_packets, "output_bytes": self.d.out.n_bytes_written + self.d.out.used,
                "output_write_errors": self.d.out.n_write_errors}


PCAP_INPUT_FN = gn_node_fn(pcap_input_fn)
PCAP_OUTPUT_FN = gn_node_fn(pcap_output_fn)


class PcapDevice(Device):
    """A ``pcap`` interface for offline runs: replays ``input_path`` as
    received packets and writes what is sent to it to ``output_path``.

    ``PcapDevice(engine, "pcap0", input_path="in.pcap", output_path="out.pcap",
    next_node=None, rx_mode=None, repeat=1, mtu=9000, admin_up=True,
    nanosecond=False)``; next_node None: ethernet-input if the graph has
    it, else null; rx_mode None: polling with an input file, else
    interrupt (an output-only interface then costs no CPU).
    Either path may be omitted: no input (the input node has nothing to
    do) or no output (sent packets are counted and freed). The interface
    is created admin up (``admin_up=False`` to change that). The output file is
    complete after ``flush()`` and when the engine closes. It is opened as
    a capture's file with ``overwrite`` (a rerun replaces its own output,
    never a symbolic link nor a file that is not a pcap file).

    pcap-input-<name>: input. Metadata set: current_data 0, current_length,
    chains for frames over one buffer, sw_if_index[RX]. Next: next_node.
    Drops: short-frame, too-big (over MTU + 18), no-buffers.
    pcap-output-<name>: internal. Metadata used: current_data,
    current_length, chains. Next: none (frees). Errors: write-error.
    """
    kind = "pcap"

    def __init__(self, engine, name: str, *, input_path=None, output_path=None, next_node=None,
                 rx_mode=None, repeat: int = 1, mtu: int = 9000, mac=None, admin_up: bool = True,
                 nanosecond: bool = False):
        if rx_mode is None:
            rx_mode = "polling" if input_path is not None else "interrupt"
        super().__init__(engine, name, mac=mac, mtu=mtu, rx_mode=rx_mode)
        self.input_path = os.fspath(input_path) if input_path is not None else None
        self.output_path = os.fspath(output_path) if output_path is not None else None
        self.next_node = next_node
        self._st = _PcapDevState()
        if repeat < 1:
            raise DeviceError("repeat must be >= 1")
        self.input_packets = 0
        if self.input_path is not None:
            pkts = [p for _, p in read_pcap(self.input_path)]
            self.input_packets = len(pkts)
            self._st.load(pkts, repeat)
        if self.output_path is not None:
            try:
                self._st.open_output(self.output_path, nanosecond)
            except PcapFileError as e:
                raise DeviceError(f"pcap output: {e}") from None
        if admin_up:
            engine.interfaces.set_admin_up(self.sw_if_index, True)
        self._input_index = None

    def nodes(self):
        state, adaptive = self.node_state()
        doc = (type(self).__doc__ or "").strip()
        return (node(self.input_node, PCAP_INPUT_FN, type="input", state=state, adaptive=adaptive,
                     errors=PCAP_INPUT_ERRORS, Error=InputError, setup=self._setup, instance=self, doc=doc,
                     next_nodes=(self.next_node,) if self.next_node else DefaultNext(self.engine)),
                node(self.output_node, PCAP_OUTPUT_FN, errors=PCAP_OUTPUT_ERRORS, Error=OutputError,
                     setup=self._setup_output, attach_to=(("interface-output", self.sw_if_index),), instance=self,
                     doc=doc))

    def _setup(self, engine, node_index):
        self._input_index = node_index
        self._st.setup(engine.interfaces.address(self.sw_if_index), pcap_main_address(engine), self.sw_if_index,
                       self.mtu + 18)
        engine.main.set_runtime_data(node_index, self._st.capsule())
        engine.main.set_interrupt_pending(node_index)

    def _setup_output(self, engine, node_index):
        engine.main.set_runtime_data(node_index, self._st.capsule())

    def set_admin_up(self, up: bool) -> None:
        super().set_admin_up(up)
        if up and self._input_index is not None:
            self.engine.main.set_interrupt_pending(self._input_index)

    def flush(self) -> None:
        """Write what the output node has buffered to the output file."""
        self.engine.call(self._st.flush) if self.engine.main is not None else self._st.flush()

    def close(self) -> None:
        self._st.close_output()

    def hardware_info(self) -> dict:
        st = self._st.stats()
        return {"input": f"{self.input_path} ({self.input_packets} packets, {st['packets_left']} left)"
                if self.input_path else "none",
                "output": f"{self.output_path} ({st['output_bytes']} bytes)" if self.output_path else "none"}
