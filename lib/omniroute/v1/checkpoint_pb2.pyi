import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from omniroute.v1 import agent_pb2 as _agent_pb2
from omniroute.v1 import agent_state_pb2 as _agent_state_pb2
from omniroute.v1 import task_pb2 as _task_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CheckpointRecord(_message.Message):
    __slots__ = ("chunk", "manifest")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    chunk: CheckpointChunk
    manifest: CheckpointManifest
    def __init__(self, chunk: _Optional[_Union[CheckpointChunk, _Mapping]] = ..., manifest: _Optional[_Union[CheckpointManifest, _Mapping]] = ...) -> None: ...

class CheckpointChunk(_message.Message):
    __slots__ = ("checkpoint_id", "index", "agents", "fences", "task_events", "previous_manifest_offset", "contents")
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    FENCES_FIELD_NUMBER: _ClassVar[int]
    TASK_EVENTS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_MANIFEST_OFFSET_FIELD_NUMBER: _ClassVar[int]
    CONTENTS_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    index: int
    agents: _containers.RepeatedCompositeFieldContainer[_agent_pb2.Agent]
    fences: _containers.RepeatedCompositeFieldContainer[_agent_state_pb2.RouterFence]
    task_events: _containers.RepeatedCompositeFieldContainer[_task_pb2.TaskEvent]
    previous_manifest_offset: int
    contents: _containers.RepeatedCompositeFieldContainer[HeldContent]
    def __init__(self, checkpoint_id: _Optional[str] = ..., index: _Optional[int] = ..., agents: _Optional[_Iterable[_Union[_agent_pb2.Agent, _Mapping]]] = ..., fences: _Optional[_Iterable[_Union[_agent_state_pb2.RouterFence, _Mapping]]] = ..., task_events: _Optional[_Iterable[_Union[_task_pb2.TaskEvent, _Mapping]]] = ..., previous_manifest_offset: _Optional[int] = ..., contents: _Optional[_Iterable[_Union[HeldContent, _Mapping]]] = ...) -> None: ...

class CoveredOffset(_message.Message):
    __slots__ = ("topic", "partition", "offset")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    offset: int
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class CheckpointManifest(_message.Message):
    __slots__ = ("checkpoint_id", "chunks", "first_chunk_offset", "covers", "taken_at", "agents")
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    FIRST_CHUNK_OFFSET_FIELD_NUMBER: _ClassVar[int]
    COVERS_FIELD_NUMBER: _ClassVar[int]
    TAKEN_AT_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    chunks: int
    first_chunk_offset: int
    covers: _containers.RepeatedCompositeFieldContainer[CoveredOffset]
    taken_at: _timestamp_pb2.Timestamp
    agents: int
    def __init__(self, checkpoint_id: _Optional[str] = ..., chunks: _Optional[int] = ..., first_chunk_offset: _Optional[int] = ..., covers: _Optional[_Iterable[_Union[CoveredOffset, _Mapping]]] = ..., taken_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., agents: _Optional[int] = ...) -> None: ...

class HeldContent(_message.Message):
    __slots__ = ("reservation_id", "agent_id", "assignment", "message", "sequence")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    agent_id: str
    assignment: _task_pb2.Assignment
    message: _task_pb2.ConversationMessage
    sequence: int
    def __init__(self, reservation_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., assignment: _Optional[_Union[_task_pb2.Assignment, _Mapping]] = ..., message: _Optional[_Union[_task_pb2.ConversationMessage, _Mapping]] = ..., sequence: _Optional[int] = ...) -> None: ...
