"""Octet-counting framing of syslog over TLS (RFC 5425 §4.3; ITI TF-2 §3.20.4.1.3, ATNA's only TLS
framing):

    SYSLOG-FRAME = MSG-LEN SP SYSLOG-MSG        MSG-LEN = NONZERO-DIGIT *DIGIT   (octets of SYSLOG-MSG)

Framing is done on bytes. A frame whose MSG-LEN is not a number (a sender using the LF-terminated
"non-transparent" framing of RFC 6587 sends '<' first) or is larger than the receiver's limit
cannot be resynchronised: nothing says where the next frame starts, so the connection must end.
"""

from __future__ import annotations

__all__ = ["Deframer", "FramingFault", "frame"]

_MAX_DIGITS = 10  # MSG-LEN of up to 9,999,999,999 octets: any longer prefix is not a length


def frame(message: bytes) -> bytes:
    return b"%d %s" % (len(message), message)


class FramingFault(Exception):
    """The stream cannot be framed any further; ``kept`` are the bytes of the broken frame."""

    def __init__(self, reason: str, kept: bytes) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kept = kept


class Deframer:
    """Bytes in, SYSLOG-MSGs out. Once the stream is broken, ``feed`` returns the messages framed
    before the fault and ``fault`` says what broke; nothing more is framed after it."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_bytes = max_message_bytes
        self.buffer = bytearray()
        self._want: int | None = None  # MSG-LEN of the frame being read
        self.fault: FramingFault | None = None

    @property
    def pending(self) -> int:
        """Octets of an unfinished frame (0 between frames)."""
        return len(self.buffer)

    def unfinished(self) -> str:
        """What is missing of the unfinished frame, for the errored record."""
        if self._want is None:
            return f"{len(self.buffer)} bytes of a frame whose MSG-LEN never ended"
        return f"{len(self.buffer)} of the {self._want} bytes of a frame"

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        if self.fault is not None:
            return out
        self.buffer += data
        try:
            self._frames(out)
        except FramingFault as fault:
            self.fault = fault
        return out

    def _frames(self, out: list[bytes]) -> None:
        buf = self.buffer
        while buf:
            if self._want is None:
                space = buf.find(b" ", 0, _MAX_DIGITS + 1)
                digits = bytes(buf[: space if space != -1 else min(len(buf), _MAX_DIGITS + 1)])
                if not digits.isdigit() or digits.startswith(b"0"):
                    raise self._fault(
                        f"MSG-LEN must be a number of octets without leading zeros, got "
                        f"{digits[:_MAX_DIGITS]!r} (RFC 5425 §4.3 octet-counting framing)"
                    )
                if space == -1:
                    if len(buf) > _MAX_DIGITS:
                        raise self._fault(f"MSG-LEN longer than {_MAX_DIGITS} digits (RFC 5425 §4.3)")
                    break  # the rest of the length has not come yet
                length = int(digits)
                if length > self.max_bytes:
                    raise self._fault(
                        f"MSG-LEN {length} exceeds the limit of {self.max_bytes} bytes (max_message_bytes)"
                    )
                del buf[: space + 1]
                self._want = length
            if len(buf) < self._want:
                break
            out.append(bytes(buf[: self._want]))
            del buf[: self._want]
            self._want = None

    def _fault(self, reason: str) -> FramingFault:
        kept = bytes(self.buffer[: self.max_bytes])
        self.buffer.clear()
        self._want = None
        return FramingFault(reason, kept)
