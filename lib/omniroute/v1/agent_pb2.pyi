import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from omniroute.v1 import inquiry_pb2 as _inquiry_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_STATUS_UNSPECIFIED: _ClassVar[AgentStatus]
    AGENT_STATUS_OFFLINE: _ClassVar[AgentStatus]
    AGENT_STATUS_AVAILABLE: _ClassVar[AgentStatus]
    AGENT_STATUS_AWAY: _ClassVar[AgentStatus]
    AGENT_STATUS_WRAP_UP: _ClassVar[AgentStatus]

class Tier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIER_UNSPECIFIED: _ClassVar[Tier]
    TIER_REPRESENTATIVE: _ClassVar[Tier]
    TIER_SPECIALIST: _ClassVar[Tier]
    TIER_SUPERVISOR: _ClassVar[Tier]
AGENT_STATUS_UNSPECIFIED: AgentStatus
AGENT_STATUS_OFFLINE: AgentStatus
AGENT_STATUS_AVAILABLE: AgentStatus
AGENT_STATUS_AWAY: AgentStatus
AGENT_STATUS_WRAP_UP: AgentStatus
TIER_UNSPECIFIED: Tier
TIER_REPRESENTATIVE: Tier
TIER_SPECIALIST: Tier
TIER_SUPERVISOR: Tier

class ChannelCapacity(_message.Message):
    __slots__ = ("channel", "capacity", "load")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    channel: _inquiry_pb2.Channel
    capacity: int
    load: int
    def __init__(self, channel: _Optional[_Union[_inquiry_pb2.Channel, str]] = ..., capacity: _Optional[int] = ..., load: _Optional[int] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("reservation_id", "agent_id", "inquiry_id", "channel", "expires_at", "accepted", "workspace")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    agent_id: str
    inquiry_id: str
    channel: _inquiry_pb2.Channel
    expires_at: _timestamp_pb2.Timestamp
    accepted: bool
    workspace: str
    def __init__(self, reservation_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., inquiry_id: _Optional[str] = ..., channel: _Optional[_Union[_inquiry_pb2.Channel, str]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., accepted: _Optional[bool] = ..., workspace: _Optional[str] = ...) -> None: ...

class Agent(_message.Message):
    __slots__ = ("id", "workspace", "name", "skills", "languages", "tier", "capacities", "status", "away_reason", "status_since", "idle_since", "reservations", "version", "total_capacity", "voice_blocks_other_channels", "wrap_up_until", "session_active", "site")
    class SkillsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    CAPACITIES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AWAY_REASON_FIELD_NUMBER: _ClassVar[int]
    STATUS_SINCE_FIELD_NUMBER: _ClassVar[int]
    IDLE_SINCE_FIELD_NUMBER: _ClassVar[int]
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    VOICE_BLOCKS_OTHER_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    WRAP_UP_UNTIL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    id: str
    workspace: str
    name: str
    skills: _containers.ScalarMap[str, int]
    languages: _containers.RepeatedScalarFieldContainer[str]
    tier: Tier
    capacities: _containers.RepeatedCompositeFieldContainer[ChannelCapacity]
    status: AgentStatus
    away_reason: str
    status_since: _timestamp_pb2.Timestamp
    idle_since: _timestamp_pb2.Timestamp
    reservations: _containers.RepeatedCompositeFieldContainer[Reservation]
    version: int
    total_capacity: int
    voice_blocks_other_channels: bool
    wrap_up_until: _timestamp_pb2.Timestamp
    session_active: bool
    site: str
    def __init__(self, id: _Optional[str] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., skills: _Optional[_Mapping[str, int]] = ..., languages: _Optional[_Iterable[str]] = ..., tier: _Optional[_Union[Tier, str]] = ..., capacities: _Optional[_Iterable[_Union[ChannelCapacity, _Mapping]]] = ..., status: _Optional[_Union[AgentStatus, str]] = ..., away_reason: _Optional[str] = ..., status_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idle_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reservations: _Optional[_Iterable[_Union[Reservation, _Mapping]]] = ..., version: _Optional[int] = ..., total_capacity: _Optional[int] = ..., voice_blocks_other_channels: _Optional[bool] = ..., wrap_up_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., session_active: _Optional[bool] = ..., site: _Optional[str] = ...) -> None: ...

class AgentEvent(_message.Message):
    __slots__ = ("event_id", "change", "agent", "occurred_at", "actor", "reason")
    class Change(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CHANGE_UNSPECIFIED: _ClassVar[AgentEvent.Change]
        CHANGE_UPSERTED: _ClassVar[AgentEvent.Change]
        CHANGE_STATUS: _ClassVar[AgentEvent.Change]
        CHANGE_RESERVED: _ClassVar[AgentEvent.Change]
        CHANGE_RELEASED: _ClassVar[AgentEvent.Change]
        CHANGE_ACCEPTED: _ClassVar[AgentEvent.Change]
        CHANGE_REMOVED: _ClassVar[AgentEvent.Change]
    CHANGE_UNSPECIFIED: AgentEvent.Change
    CHANGE_UPSERTED: AgentEvent.Change
    CHANGE_STATUS: AgentEvent.Change
    CHANGE_RESERVED: AgentEvent.Change
    CHANGE_RELEASED: AgentEvent.Change
    CHANGE_ACCEPTED: AgentEvent.Change
    CHANGE_REMOVED: AgentEvent.Change
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    change: AgentEvent.Change
    agent: Agent
    occurred_at: _timestamp_pb2.Timestamp
    actor: str
    reason: str
    def __init__(self, event_id: _Optional[str] = ..., change: _Optional[_Union[AgentEvent.Change, str]] = ..., agent: _Optional[_Union[Agent, _Mapping]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
