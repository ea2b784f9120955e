"""What every connector implements, and what a source may ask of its channel."""

from __future__ import annotations

import logging
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ConfigDict

from engine.hl7v2.charset import codec_for, msh18_from_bytes, with_msh18
from engine.hl7v2.peek import Header
from engine.message import ContentType, Message, Outcome

if TYPE_CHECKING:
    from sqlalchemy import Connection, Table

    from engine.audit import AuditEvent
    from engine.config import AppConfig
    from engine.services import Services

__all__ = [
    "Destination",
    "InlineMode",
    "Options",
    "Outbound",
    "Receiver",
    "SendResult",
    "Source",
    "admit_connection",
    "parse_url",
    "stream_peer",
]


InlineMode = Literal["queue", "read", "store"]

log = logging.getLogger(__name__)


class Options(BaseModel):
    """Base of connector option models: unknown keys are errors, reported with file and line."""

    model_config = ConfigDict(extra="forbid")


def parse_url(url: str) -> SplitResult:
    return urlsplit(url)


def stream_peer(transport: Any) -> str:
    """A stream source's sender, as records name it: ``host:port``, and the CN of its TLS client
    certificate when it showed one."""
    host, port = (transport.get_extra_info("peername") or ("?", 0))[:2]
    peer = f"{host}:{port}"
    cert = transport.get_extra_info("peercert")
    if cert:
        subject = dict(x[0] for x in cert.get("subject", ()))
        peer += f" cn={subject.get('commonName', '?')}"
    return peer


def admit_connection(channel_id: str, peer: str, open_now: int, limit: int, transport: Any) -> bool:
    """A new connection of a stream source, within its ``max_connections``? A flood must not starve
    the senders already connected: a newcomer over the limit is turned away at once (aborted)."""
    if open_now < limit:
        return True
    log.warning(
        "channel %s: refused connection from %s: %d connections already open (max_connections)",
        channel_id,
        peer,
        open_now,
    )
    transport.abort()
    return False


class Receiver(Protocol):
    """The channel, as seen by a source connector."""

    channel_id: str
    charset: str

    async def receive(
        self,
        raw: bytes,
        peer: str,
        *,
        content_type: ContentType = ContentType.HL7V2,
        header: Header | None = None,
    ) -> tuple[Outcome, Message | None]: ...

    async def reject_unframed(self, raw: bytes, peer: str, reason: str) -> int | None:
        """Keep bytes that never became a message (broken frame, oversize...) as an errored record."""
        ...


@dataclass(frozen=True, slots=True)
class Outbound:
    """One delivery handed to a destination connector."""

    delivery_id: int
    message_id: int
    channel_id: str
    control_id: str
    content_type: ContentType
    charset: str
    raw: bytes  # the bytes received
    content: str | None  # transformed content, or None when it is the received message unchanged
    attempt: int
    peer: str = ""  # who sent the message (host:port), for a destination's own audit records

    def payload(self, charset: str | None = None) -> bytes:
        """The bytes to send: the received bytes when nothing changed them, else the content encoded.

        ``charset`` (a destination's option, aliases allowed) re-encodes; MSH-18 then names it.
        """
        if charset:
            target = codec_for(charset) or charset
        elif self.content is not None and self.content_type in (ContentType.JSON, ContentType.XML):
            target = "utf-8"  # a map step's JSON/XML output is UTF-8 whatever the sender's charset was
        elif self.content is not None and self.content_type is ContentType.HL7V2:
            # a map step's HL7 output says its own charset in MSH-18 (e.g. UNICODE UTF-8 for the
            # platform profile, whatever the vendor sent); without one it keeps the sender's
            declared = codec_for(msh18_from_bytes(self.content[:512].encode("ascii", "replace")))
            target = declared or self.charset or "utf-8"
        else:
            target = self.charset or "utf-8"
        if self.content is None and target == (self.charset or "utf-8"):
            return self.raw
        text = self.content
        if text is None:
            text = self.raw.decode(self.charset or "utf-8", "replace")
        if self.content_type is ContentType.HL7V2 and target != self.charset:
            text = with_msh18(text, target)
        return text.encode(target, "replace")


@dataclass(frozen=True, slots=True)
class SendResult:
    sent: bytes
    response: bytes | None = None
    response_charset: str = ""
    # the destination answered but did not take the message (an in-process actor's AE): the
    # delivery is recorded as errored with this reason, and the answer is still relayed as is
    refused: str | None = None
    # the destination's own audit records (a query's ATNA record), written with the delivery's status
    audit: tuple[AuditEvent, ...] = ()
    # writes that go with the answer (a PDQ continuation), run in the commit of the delivery's status
    writes: Callable[[Connection], None] | None = None
    # rows to insert with the delivery's status (an audit repository's record), in the statement
    # that inserts those of the other messages of its group commit
    rows: tuple[tuple[Table, dict[str, Any]], ...] = ()
    # called on the event loop once the delivery's status has committed (wake an ITI-10 outbox)
    after_commit: Callable[[], None] | None = None
    # what the store keeps as the response when it is not the response itself: an ITI-43 answer's
    # envelope without the documents, which the repository keeps already (None: the response)
    recorded: bytes | None = None


class Source(ABC):
    scheme: ClassVar[str]
    Options: ClassVar[type[Options]]
    # A listener whose port several worker processes of one machine may share (SO_REUSEPORT: the
    # kernel spreads the connections over them). A source that is not (a folder poller) runs in
    # the first worker only (``hie run --workers``).
    shares_port: ClassVar[bool] = False

    def __init__(
        self, url: SplitResult, options: Any, receiver: Receiver, app: AppConfig, tls: ssl.SSLContext | None
    ) -> None:
        self.url = url
        self.options = options
        self.receiver = receiver
        self.app = app
        self.tls = tls
        self.reuse_port = False  # set by the runtime when several workers listen on the port

    def attach(self, services: Services) -> None:  # noqa: B027 - optional hook
        """Called once before ``start`` with what the channels share (an in-process actor's source)."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    def describe(self) -> str:
        return self.url.geturl()

    def up(self) -> bool:
        """Is it taking messages now (its socket listening, its poller scheduled)? For the metrics
        endpoint and ``listener_down`` alerts; a source that cannot tell is up while it runs."""
        return True

    @classmethod
    def check_url(cls, url: SplitResult) -> str | None:
        """A problem with the URL, for ``hie check``; None when it is fine."""
        return None


class Destination(ABC):
    scheme: ClassVar[str]
    Options: ClassVar[type[Options]]
    # May a delivery be sent twice without harm (e.g. a file named after the message)? Then
    # several sends can share one status commit; otherwise each send is committed before the next.
    idempotent: ClassVar[bool] = False
    # Is this destination's answer the answer to the sender (an in-process actor's ACK or RSP)?
    # Then the channel must relay it (ack: after_delivery, ack_from: this destination).
    answers_sender: ClassVar[bool] = False
    # How an after_delivery channel asks it, when it is the channel's ack_from destination:
    #   "queue": the message is stored first, then sent, and the outcome committed (a remote peer);
    #   "read":  its answer changes nothing (a query): it is asked first, then the message, the
    #            answer and their audit records commit together, once;
    #   "store": its work is a change to the engine's own database (an in-process actor):
    #            ``send_in`` runs inside the transaction that stores the message, so the message,
    #            the change and the answer commit together or not at all, once.
    inline: ClassVar[InlineMode] = "queue"

    def __init__(
        self,
        url: SplitResult,
        options: Any,
        app: AppConfig,
        tls: ssl.SSLContext | None,
        channel_id: str,
        destination_id: str,
    ) -> None:
        self.url = url
        self.options = options
        self.app = app
        self.tls = tls
        self.channel_id = channel_id
        self.destination_id = destination_id

    def attach(self, services: Services) -> None:  # noqa: B027 - optional hook
        """Called once before ``start`` with what the channels share (the store, the id maker).

        In-process actors (a PIX Manager) keep their state in the engine's database through it.
        """

    def inline_mode(self, msg: Message) -> InlineMode:
        """How this message is asked (``inline``); a destination that both changes and reads (an XDS
        registry: ITI-42 registers, ITI-18 queries) decides per message, from its header."""
        return self.inline

    async def prepare_inline(self, out: Outbound) -> Any:
        """``prepare_in`` for the request being answered; a destination whose preparation blocks
        (writing a document's bytes) does it off the event loop here."""
        return self.prepare_in(out)

    async def start(self) -> None:  # noqa: B027 - optional hook
        pass

    async def stop(self) -> None:  # noqa: B027 - optional hook
        pass

    async def flush(self) -> None:  # noqa: B027 - optional hook
        """Make the sends since the last flush durable; called before their status is committed.

        An idempotent destination may defer work here (a file destination syncs each directory once
        per batch instead of once per file). If it raises, the statuses are not committed and the
        deliveries are sent again.
        """

    @abstractmethod
    async def send(self, out: Outbound) -> SendResult:
        """Deliver once. Raise DeliveryError to retry later, PermanentDeliveryError to dead-letter."""

    def prepare_in(self, out: Outbound) -> Any:
        """The part of ``send_in`` that needs no database (parsing, checking, normalising), done on
        the event loop before the transaction: the store has one writer, so what it does is serial."""
        return None

    def send_in(self, conn: Connection, out: Outbound, prepared: Any) -> SendResult:
        """Deliver once inside the store's transaction (``inline = "store"``), on the writer's thread,
        with what ``prepare_in`` returned.

        What it writes on ``conn`` commits with the message and its status. If it raises, its
        writes are rolled back (a savepoint) and the delivery is recorded as failed.
        """
        raise NotImplementedError(f"{type(self).__name__} does not deliver inside the store")

    @classmethod
    def check_url(cls, url: SplitResult) -> str | None:
        return None
