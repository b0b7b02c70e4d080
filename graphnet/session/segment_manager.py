"""The segment manager of one app: its memfd segments (issue 14 item 1).

An app gets its first segment at attach (it holds the workers' message
queues and the first sessions' fifos). When a worker's segment has no room
for a new session's fifos, the session layer asks this manager
(``SessionLayer.set_segment_full_handler``): it points the app's workers at
another segment of the app with enough free bytes, or adds a segment, up to
``max_segments`` of ``segment_size`` bytes each (app options, checked in
AppOptions). Past the limit the allocation fails and is counted
(``fifo_alloc_fail``), nothing else breaks.

Invariants:
  - every segment of the app is registered with the session layer (its
    index is in the fifos and the app messages) until it is freed;
  - the first segment lives as long as the app (its queues are there);
  - an added segment is freed by ``collect()`` once it holds no block at
    all (its last fifo or queue is gone); workers pointing at it go back to
    the first segment; ``on_free`` callbacks are told (the attach server
    tells the app's processes to unmap it);
  - the manager never holds more than ``max_segments`` segments.
"""
from __future__ import annotations

from typing import Callable, Optional

from graphnet.session.segment import Segment
from graphnet.session.msg_queue import MessageQueue


class SegmentLimitError(MemoryError):
    """The app's segments are full and it may not have more."""


class SegmentManager:
    """The segments of one app (see the module docstring)."""

    def __init__(self, layer, name: str, segment_size: int, max_segments: int):
        self.layer = layer
        self.name = name
        self.segment_size = segment_size
        self.max_segments = max_segments
        self.segments: dict[int, Segment] = {}        # layer index -> Segment, oldest first
        self.n_added = 0
        self.n_freed = 0
        self.n_refused = 0                            # no room and no more segments allowed
        self.on_free: list[Callable[[int], None]] = []
        self.first = self.add()

    def add(self) -> int:
        """A new segment; its index. SegmentLimitError past max_segments."""
        if len(self.segments) >= self.max_segments:
            self.n_refused += 1
            raise SegmentLimitError(f"app {self.name!r}: {self.max_segments} segments of "
                                    f"{self.segment_size} bytes are full (max_segments)")
        seg = Segment(self.segment_size, f"app-{self.name}-{self.n_added}")
        try:
            idx = self.layer.add_segment(seg)
        except BaseException:
            seg.close()
            raise
        self.segments[idx] = seg
        self.n_added += 1
        return idx

    def __contains__(self, index: int) -> bool:
        return index in self.segments

    def segment(self, index: int) -> Segment:
        return self.segments[index]

    def with_room(self, need: int, exclude: Optional[int] = None) -> int:
        """A segment with at least `need` free bytes (an existing one
        first, else a new one); SegmentLimitError if none may be had."""
        for idx, seg in self.segments.items():
            if idx != exclude and seg.stats()["bytes_free"] >= need:
                return idx
        return self.add()

    def alloc_mq(self, n_slots: int, slot_size: int = 64, signal: bool = True) -> tuple[int, MessageQueue]:
        """A message queue in one of the app's segments: (index, queue)."""
        from graphnet.session.msg_queue import HEADER_BYTES
        need = HEADER_BYTES + n_slots * slot_size + 128
        idx = self.with_room(need)
        return idx, MessageQueue.alloc(self.segments[idx], n_slots, slot_size, signal)

    def collect(self, keep=()) -> list[int]:
        """Free the added segments that hold no block (and are not in
        `keep`); returns their indices."""
        freed = []
        for idx, seg in list(self.segments.items()):
            if idx == self.first or idx in keep or seg.stats()["used_blocks"]:
                continue
            self._free(idx)
            freed.append(idx)
        return freed

    def _free(self, idx: int) -> None:
        seg = self.segments.pop(idx)
        self.layer.del_segment(idx)
        seg.close()
        self.n_freed += 1
        for fn in list(self.on_free):
            fn(idx)

    def close(self) -> None:
        """Free every segment (the app is gone and holds no fifo, or the engine closes)."""
        for idx in list(self.segments):
            self._free(idx)

    def stats(self) -> list[dict]:
        """One dict per segment: index, name, size, bytes free, blocks by kind."""
        out = []
        for idx, seg in self.segments.items():
            st = seg.stats()
            kinds: dict[str, int] = {}
            for _, _, kind in seg.blocks():
                kinds[kind] = kinds.get(kind, 0) + 1
            out.append({"index": idx, "name": seg.name, "size": st["size"], "bytes_free": st["bytes_free"],
                        "fifos": kinds.get("fifo", 0), "queues": kinds.get("mq", 0),
                        "alloc_failures": st["alloc_failures"], "first": idx == self.first})
        return out
