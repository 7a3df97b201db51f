"""Chat conversations on Kafka, so any ingest replica serves any conversation.

A conversation's state (its start: customer, subject, language, attributes;
its inquiry id; whether the inquiry was published, the chat ended or the
customer left) is written to the compacted `chat-conversations` topic
(`TOPIC_CHAT_CONVERSATIONS`, key `workspace/conversation id`, JSON) and
acknowledged before the request is answered. Every replica follows the topic
from the beginning (no consumer group) into a local `Conversations` cache,
bounded in bytes and forgetting conversations idle for the TTL. A request for
a conversation this replica has not seen yet (started on another replica a
moment ago) waits up to `INGEST_CHAT_SYNC_WAIT_S` for it to arrive before
404. A version per record keeps an older record read late from replacing a
newer one written here; two replicas changing one conversation within the
same instant keep the later write (last writer wins).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import Field

from omniroute.feeds import TopicFollower
from omniroute_ingest.errors import Rejected
from omniroute_ingest.publisher import InquiryPublisher
from omniroute_ingest.schemas import CustomerIn, _Model
from omniroute_ingest.settings import IngestSettings

log = logging.getLogger(__name__)


class StartIn(_Model):
    """A new chat conversation."""

    customer: CustomerIn = CustomerIn()
    subject: Annotated[str, Field(max_length=1000)] = ""
    language: Annotated[str, Field(max_length=35)] = ""
    message: Annotated[str, Field(max_length=20_000)] = ""
    attributes: Annotated[
        dict[str, Annotated[str, Field(max_length=1000)]], Field(max_length=50)
    ] = {}


@dataclass
class Conversation:
    """What ingest remembers about a live conversation."""

    workspace: str
    start: StartIn
    inquiry_id: str
    published: bool = False
    ended: bool = False
    abandoned: bool = False
    messages: int = 0
    version: int = 0  # raised by every write; an older record never replaces a newer one

    def to_json(self) -> bytes:
        """The topic record."""
        return json.dumps(
            {
                "version": self.version,
                "workspace": self.workspace,
                "start": self.start.model_dump(),
                "inquiry_id": self.inquiry_id,
                "published": self.published,
                "ended": self.ended,
                "abandoned": self.abandoned,
                "messages": self.messages,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Conversation:
        """A record read back (raises ValueError when it is not one)."""
        try:
            raw: dict[str, Any] = json.loads(data)
            return cls(
                workspace=str(raw["workspace"]),
                start=StartIn.model_validate(raw["start"]),
                inquiry_id=str(raw["inquiry_id"]),
                published=bool(raw["published"]),
                ended=bool(raw["ended"]),
                abandoned=bool(raw["abandoned"]),
                messages=int(raw["messages"]),
                version=int(raw["version"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a chat conversation record: {exc}") from None


class Conversations:
    """Live conversations, bounded in bytes and expiring when idle.

    Each costs its start (customer, subject, attributes; the first message is
    published, never kept) plus a fixed overhead; beyond `max_bytes` the least
    recently used go first, and one idle for `ttl_s` is forgotten (a request
    for it is then 404). Time is passed in.
    """

    OVERHEAD = 300  # bytes per entry beyond its start: ids, flags, the dict slot

    def __init__(self, max_bytes: int, ttl_s: float) -> None:
        self._items: OrderedDict[str, tuple[Conversation, int, float]] = OrderedDict()
        self._max_bytes = max_bytes
        self._ttl_s = ttl_s
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, conversation_id: str, conversation: Conversation, now: float) -> None:
        """Remember a conversation (replacing what was held under its id)."""
        held = self._items.pop(conversation_id, None)
        if held is not None:
            self.bytes -= held[1]
        size = self.OVERHEAD + len(conversation_id) + len(conversation.start.model_dump_json())
        self._items[conversation_id] = (conversation, size, now)
        self.bytes += size
        self._trim(now)

    def offer(self, conversation_id: str, conversation: Conversation, now: float) -> bool:
        """Take a record read from the topic unless a newer version is held."""
        held = self._items.get(conversation_id)
        if held is not None and held[0].version > conversation.version:
            return False
        self.add(conversation_id, conversation, now)
        return True

    def __contains__(self, conversation_id: str) -> bool:
        return conversation_id in self._items

    def get(self, workspace: str, conversation_id: str, now: float) -> Conversation:
        """The conversation (its idle time starts again), or `Rejected(404)`."""
        self._trim(now)
        found = self._items.get(conversation_id)
        if found is None or found[0].workspace != workspace:
            raise Rejected(
                404, "not_found", "conversation_id: no such conversation in this workspace"
            )
        conversation, size, _ = found
        self._items[conversation_id] = (conversation, size, now)
        self._items.move_to_end(conversation_id)
        return conversation

    def _trim(self, now: float) -> None:
        # Least recently used first: expired ones and those beyond the budget lead.
        while self._items:
            _, (_, size, seen) = next(iter(self._items.items()))
            if self.bytes <= self._max_bytes and now - seen < self._ttl_s:
                break
            self._items.popitem(last=False)
            self.bytes -= size


class ChatStore:
    """The conversations: written to the topic, read from the local cache."""

    def __init__(
        self, settings: IngestSettings, publisher: InquiryPublisher, monotonic: Callable[[], float]
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.monotonic = monotonic
        self.cache = Conversations(settings.ingest_chat_max_bytes, settings.ingest_chat_idle_ttl_s)
        self._arrived = asyncio.Condition()
        self.reader = _ConversationReader(self)

    async def get(self, workspace: str, conversation_id: str) -> Conversation:
        """The conversation, waiting a moment for one started on another replica; else 404."""
        if conversation_id not in self.cache and self.settings.ingest_chat_sync_wait_s > 0:
            async with self._arrived:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._arrived.wait_for(lambda: conversation_id in self.cache),
                        self.settings.ingest_chat_sync_wait_s,
                    )
        # A copy: a change counts once it is written (`save`), never before.
        return replace(self.cache.get(workspace, conversation_id, self.monotonic()))

    async def save(self, conversation_id: str, conversation: Conversation) -> None:
        """Write the conversation's state and wait for the broker (BrokerUnavailable if not)."""
        conversation.version += 1
        key = f"{conversation.workspace}/{conversation_id}"
        await self.publisher.publish_state(key, conversation.to_json(), "chat")
        self.cache.add(conversation_id, conversation, self.monotonic())

    async def arrived(self, key: bytes | None, value: bytes | None) -> None:
        """A record from the topic (this replica's or another's)."""
        if not key or not value:
            return
        _, _, conversation_id = key.decode(errors="replace").partition("/")
        try:
            conversation = Conversation.from_json(value)
        except ValueError as exc:
            log.warning("unreadable chat conversation record skipped", extra={"error": str(exc)})
            return
        if self.cache.offer(conversation_id, conversation, self.monotonic()):
            async with self._arrived:
                self._arrived.notify_all()


class _ConversationReader(TopicFollower):
    """`chat-conversations` into the store's cache, from the beginning (compacted)."""

    def __init__(self, store: ChatStore) -> None:
        super().__init__(store.settings, "omniroute-ingest")
        self.topic = store.settings.topic_chat_conversations
        self.store = store
        self._key: bytes | None = None

    async def position(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        await consumer.seek_to_beginning(*partitions)

    async def take_record(self, key: bytes | None, value: bytes | None) -> None:
        await self.store.arrived(key, value)
