"""Translation between the protobuf contracts and the routing core's plain data."""

from __future__ import annotations

from omniroute.client import MAX_REQUIRED_SKILLS
from omniroute.codec import MAX_SITE_LENGTH, InvalidEvent, is_e164, seconds
from omniroute.v1 import agent_pb2, agent_state_pb2, inquiry_pb2, task_pb2
from omniroute_router.decisions import Authority, EndKind, Held, TaskEnd
from omniroute_router.model import AgentStatus, AgentView, QueuedInquiry


def channel_name(channel: int) -> str:
    """CHANNEL_POSTAL_MAIL -> "postal_mail"."""
    return inquiry_pb2.Channel.Name(channel).removeprefix("CHANNEL_").lower()


def channel_value(name: str) -> int:
    """ "postal_mail" -> CHANNEL_POSTAL_MAIL."""
    return int(inquiry_pb2.Channel.Value("CHANNEL_" + name.upper()))


def kind_name(kind: int) -> str:
    """INQUIRY_KIND_SERVICE_PROBLEM -> "service_problem" ("" when unspecified)."""
    if kind == inquiry_pb2.INQUIRY_KIND_UNSPECIFIED:
        return ""
    return inquiry_pb2.InquiryKind.Name(kind).removeprefix("INQUIRY_KIND_").lower()


_STATUS = {
    agent_pb2.AGENT_STATUS_OFFLINE: AgentStatus.OFFLINE,
    agent_pb2.AGENT_STATUS_AVAILABLE: AgentStatus.AVAILABLE,
    agent_pb2.AGENT_STATUS_AWAY: AgentStatus.AWAY,
    agent_pb2.AGENT_STATUS_WRAP_UP: AgentStatus.WRAP_UP,
}


def inquiry_from_proto(inquiry: inquiry_pb2.Inquiry, now: float) -> QueuedInquiry:
    """A queued inquiry from the canonical event; raises `InvalidEvent` when unusable."""
    if not inquiry.id:
        raise InvalidEvent("Inquiry.id is required")
    if not inquiry.workspace:
        raise InvalidEvent("Inquiry.workspace is required")
    if inquiry.channel == inquiry_pb2.CHANNEL_UNSPECIFIED:
        raise InvalidEvent("Inquiry.channel is required")
    try:
        channel = channel_name(inquiry.channel)
    except ValueError:
        raise InvalidEvent(f"Inquiry.channel {inquiry.channel} is unknown") from None
    if len(inquiry.required_skills) > MAX_REQUIRED_SKILLS:
        raise InvalidEvent(f"Inquiry.required_skills: at most {MAX_REQUIRED_SKILLS}")
    skills: dict[str, int] = {}
    for requirement in inquiry.required_skills:
        if not requirement.name:
            raise InvalidEvent("Inquiry.required_skills[].name is required")
        skills[requirement.name] = max(1, min(5, requirement.min_proficiency or 1))
    if len(inquiry.site) > MAX_SITE_LENGTH:
        raise InvalidEvent(f"Inquiry.site: at most {MAX_SITE_LENGTH} characters")
    received = seconds(inquiry.received_at) if inquiry.HasField("received_at") else 0.0
    # A clock ahead of ours must not make the inquiry look as if it waited less than zero.
    arrived = min(received, now) if received else now
    return QueuedInquiry(
        id=inquiry.id,
        workspace=inquiry.workspace,
        channel=channel,
        queue="",
        arrived_at=arrived,
        kind=kind_name(inquiry.kind) if inquiry.kind in inquiry_pb2.InquiryKind.values() else "",
        language=inquiry.language or inquiry.customer.language,
        segment=inquiry.customer.segment,
        priority=max(0, min(10, inquiry.priority)),
        skills=skills,
        thread_id=inquiry.thread_id,
        # A site binds in-person inquiries only: a customer at a store.
        site=inquiry.site if channel == "in_person" else "",
        min_tier=_min_tier(inquiry.attributes.get(MIN_TIER_ATTRIBUTE, "")),
    )


# Set by ingest's understanding (e.g. a clearly angry customer) to ask for a
# specialist or a supervisor from the start.
MIN_TIER_ATTRIBUTE = "routing.min_tier"


def _min_tier(value: str) -> int:
    """The tier an inquiry asks for; anything but "2" or "3" means no constraint."""
    return int(value) if value in ("2", "3") else 1


def agent_from_proto(agent: agent_pb2.Agent) -> AgentView:
    """The router's picture of an agent from agent-state's snapshot."""
    capacity: dict[str, int] = {}
    load: dict[str, int] = {}
    for slot in agent.capacities:
        try:
            name = channel_name(slot.channel)
        except ValueError:
            continue  # a channel newer than this router: it cannot route it anyway
        capacity[name] = slot.capacity
        load[name] = slot.load
    return AgentView(
        id=agent.id,
        workspace=agent.workspace,
        skills=dict(agent.skills),
        languages=tuple(agent.languages),
        tier=agent.tier or 1,
        capacity=capacity,
        load=load,
        total_capacity=agent.total_capacity,
        voice_blocks=agent.voice_blocks_other_channels,
        status=_STATUS.get(agent.status, AgentStatus.OFFLINE),
        idle_since=seconds(agent.idle_since),
        version=agent.version,
        site=agent.site,
    )


def held_from_proto(reservation: agent_pb2.Reservation) -> Held:
    """agent-state's open reservation, as the core compares it."""
    return Held(
        agent_id=reservation.agent_id,
        reservation_id=reservation.reservation_id,
        accepted=reservation.accepted,
        expires_at=seconds(reservation.expires_at) if reservation.HasField("expires_at") else 0.0,
    )


_ENDS = {
    task_pb2.TaskEvent.TYPE_COMPLETED: EndKind.COMPLETED,
    task_pb2.TaskEvent.TYPE_ABANDONED: EndKind.ABANDONED,
    task_pb2.TaskEvent.TYPE_DECLINED: EndKind.OFFER_FAILED,
    task_pb2.TaskEvent.TYPE_OFFER_TIMEOUT: EndKind.OFFER_FAILED,
    task_pb2.TaskEvent.TYPE_WITHDRAWN: EndKind.OFFER_FAILED,
}


def callback_number(event: task_pb2.TaskEvent) -> str:
    """The number to call of a CALLBACK_REQUESTED event; raises `InvalidEvent` when unusable."""
    number = event.callback.number
    if not is_e164(number):
        # The number itself is personal data: never in the reason (a dead letter, a log).
        raise InvalidEvent("TaskEvent.callback.number must be a phone number in E.164 form")
    return number


def callback_channel(event: task_pb2.TaskEvent) -> str:
    """The channel a callback request says the customer waits on ("": not said)."""
    if event.channel == inquiry_pb2.CHANNEL_UNSPECIFIED:
        return ""
    try:
        return channel_name(event.channel)
    except ValueError:
        raise InvalidEvent(f"TaskEvent.channel {event.channel} is unknown") from None


def callback_proto(inquiry: QueuedInquiry) -> task_pb2.Callback | None:
    """The offer's callback part (the number to call), None when it is no callback."""
    if not inquiry.callback:
        return None
    return task_pb2.Callback(
        number=inquiry.callback,
        origin_channel=channel_value(inquiry.origin_channel or inquiry.channel),  # type: ignore[arg-type]
    )


def authority_from_proto(response: agent_state_pb2.GetReservationResponse) -> Authority:
    """What agent-state knows of one inquiry (GetReservation), for `reconcile`."""
    held = None
    if response.HasField("reservation") and response.reservation.reservation_id:
        held = held_from_proto(response.reservation)
    ended = None
    event = response.last_event
    if response.HasField("last_event") and event.type in _ENDS:
        ended = TaskEnd(_ENDS[event.type], event.agent_id, event.reservation_id)
    elif event.type == task_pb2.TaskEvent.TYPE_TRANSFERRED and event.target_queue:
        # TRANSFERRED to a queue ended the agent's task (one to an agent did
        # not: the target holds it, the open reservation says so).
        ended = TaskEnd(EndKind.TRANSFERRED, event.agent_id, event.reservation_id)
    return Authority(held=held, ended=ended)
