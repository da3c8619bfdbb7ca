"""Content-Encoding decoded in bounded pieces, so a compressed bomb never fills memory."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

from pipeline.ingest.addresses import Refused

CHUNK = 64 * 1024  # bytes read from the network, and decoded, at a time


class BoundedDecoder:
    """Content-Encoding decoding that never makes more than ``CHUNK`` bytes at a time.

    httpx decodes each network read whole before anyone can look at its size, so 64 KiB of a gzip
    bomb became 64 MiB in memory at once, in every thread. Here each ``zlib`` step is limited with
    ``max_length`` and the caller stops taking pieces at its cap. Only the encodings we ask for
    (gzip, deflate; ``identity``) are decoded; any other one raises ``Refused("bad_encoding")``,
    since we cannot bound what we cannot decompress in steps."""

    def __init__(self, content_encoding: str) -> None:
        names = [n.strip().lower() for n in content_encoding.split(",") if n.strip()]
        self._stages: list[Any] = []
        for name in reversed(names):  # listed in the order applied: undone last to first
            if name in ("identity", ""):
                continue
            if name in ("gzip", "x-gzip"):
                self._stages.append(_Inflate(16 + zlib.MAX_WBITS))
            elif name == "deflate":
                self._stages.append(_Inflate(zlib.MAX_WBITS, raw_fallback=True))
            else:
                raise Refused(
                    "bad_encoding", f"Content-Encoding {name!r} is not supported (we ask for gzip, deflate)"
                )

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data`` (the next raw bytes of the body), in pieces of at most CHUNK."""
        return self._through(0, data)

    def _through(self, stage: int, data: bytes) -> Iterator[bytes]:
        if stage == len(self._stages):
            if data:
                yield data
            return
        for piece in self._stages[stage].feed(data):
            yield from self._through(stage + 1, piece)


class _Inflate:
    """One zlib stream decoded in steps of at most CHUNK output bytes."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._obj = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback  # "deflate" is sent both zlib-wrapped and raw
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._obj.eof:
            return  # bytes after the end of the stream: nothing of the document
        try:
            first = self._obj.decompress(data, CHUNK)
        except zlib.error as exc:
            if not (self._raw_fallback and not self._started):
                raise Refused("decoding_error", f"cannot decompress the body: {exc}") from exc
            self._raw_fallback = False
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            yield from self.feed(data)
            return
        self._started = True
        out, previous = first, data
        while True:
            if out:
                yield out
            tail = self._obj.unconsumed_tail
            # A full piece may leave output pending inside zlib even with no input left.
            if self._obj.eof or (not tail and len(out) < CHUNK) or (not out and tail == previous):
                return
            previous = tail
            try:
                out = self._obj.decompress(tail, CHUNK)
            except zlib.error as exc:
                raise Refused("decoding_error", f"cannot decompress the body: {exc}") from exc
