"""The router's state tables (Faust tables, changelog topics): reading and writing them.

The only module that touches them; the adapter hands it what the core says
changed.

Values are the routing core's plain dicts (JSON). Keys that name an inquiry or
a thread are scoped by workspace (`workspace/id`): two workspaces may use the
same ids. Every write happens inside a stream event, so Faust puts it on that
event's partition, the workspace's.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import MutableMapping
from typing import Any

from omniroute_router.config import WorkspaceConfig
from omniroute_router.contents import content_key
from omniroute_router.model import AgentView, QueuedInquiry
from omniroute_router.routing import Changes, WorkspaceRouter
from omniroute_router.snapshots import add_answer, day_key, utc_day

Table = MutableMapping[str, Any]


class RoutingTables:
    """The tables: inquiries, agents, threads, workspaces (-> partition), sweeps,
    contents (each inquiry as published, while it is routed) and answered
    (today's answers per queue, for the wallboard). Plain dicts until
    `create_app` binds Faust tables."""

    def __init__(self) -> None:
        self.inquiries: Table = {}
        self.agents: Table = {}
        self.threads: Table = {}
        self.workspaces: Table = {}
        self.sweeps: Table = {}
        self.contents: Table = {}
        self.answered: Table = {}

    def load(self, workspace: str, config: WorkspaceConfig) -> WorkspaceRouter:
        """A workspace's routing state as the tables hold it."""
        router = WorkspaceRouter(workspace, config)
        for key, value in self.inquiries.items():
            if value.get("workspace") != workspace:
                continue
            if "finished_at" in value:
                router.restore_finished(value.get("id", key), value["finished_at"])
            else:
                router.restore_inquiry(QueuedInquiry.from_dict(value))
        for value in self.agents.values():
            if value.get("workspace") == workspace:
                router.restore_agent(AgentView.from_dict(value))
        prefix = workspace + "/"
        for key, value in self.threads.items():
            if key.startswith(prefix):
                router.restore_thread(key[len(prefix) :], value[0], value[1])
        return router

    def persist(self, router: WorkspaceRouter, changes: Changes) -> None:
        """Write (or delete) what changed; the content of an inquiry no longer routed goes."""
        for inquiry_id in changes.inquiries:
            key = f"{router.workspace}/{inquiry_id}"
            inquiry = router.inquiries.get(inquiry_id)
            if inquiry is not None:
                self.inquiries[key] = inquiry.to_dict()
                continue
            self.contents.pop(content_key(router.workspace, inquiry_id), None)
            if inquiry_id in router.finished:
                self.inquiries[key] = {
                    "id": inquiry_id,
                    "workspace": router.workspace,
                    "finished_at": router.finished[inquiry_id],
                }
            else:
                self.inquiries.pop(key, None)
        for agent_id in changes.agents:
            agent = router.agents.get(agent_id)
            if agent is None:
                self.agents.pop(agent_id, None)
            else:
                self.agents[agent_id] = agent.to_dict()
        for thread in changes.threads:
            key = f"{router.workspace}/{thread}"
            if thread in router.threads:
                self.threads[key] = list(router.threads[thread])
            else:
                self.threads.pop(key, None)

    def place(self, workspace: str, partition: int) -> None:
        """Record the partition a workspace lives on (ticks visit every one)."""
        if self.workspaces.get(workspace) != partition:
            self.workspaces[workspace] = partition

    def workspaces_on(self, partition: int) -> list[str]:
        """Every workspace ever seen on `partition`."""
        return [ws for ws, owner in list(self.workspaces.items()) if owner == partition]

    def sweep_checkpoint(self, partition: int) -> int | None:
        """The next inquiries offset the sweep reads on `partition`, if it swept before."""
        found = self.sweeps.get(str(partition))
        return None if found is None else int(found)

    def set_sweep_checkpoint(self, partition: int, offset: int) -> None:
        """Record how far the sweep has read `partition`."""
        self.sweeps[str(partition)] = offset

    def keep_content(self, workspace: str, inquiry_id: str, encoded: bytes) -> None:
        """Remember the inquiry as published (JSON table values: base64 text)."""
        self.contents[content_key(workspace, inquiry_id)] = base64.b64encode(encoded).decode()

    def content(self, workspace: str, inquiry_id: str) -> bytes | None:
        """The inquiry as published, while it is routed (None: gone or unreadable)."""
        stored = self.contents.get(content_key(workspace, inquiry_id))
        if not stored:
            return None
        try:
            return base64.b64decode(stored, validate=True)
        except (binascii.Error, ValueError):
            return None

    def count_answer(
        self, workspace: str, queue: str, within_target: bool | None, now: float
    ) -> None:
        """Count one answered inquiry in today's counts (`within_target` None: no target)."""
        key = day_key(workspace, utc_day(now))
        counts: dict[str, list[int]] = dict(self.answered.get(key) or {})
        counts[queue] = add_answer(counts.get(queue), within_target)
        self.answered[key] = counts  # assigned, not mutated, so the changelog sees it
        # Only today's counts are shown: the day before yesterday's can go.
        self.answered.pop(day_key(workspace, utc_day(now - 2 * 86400)), None)

    def answered_today(self, workspace: str, now: float) -> dict[str, list[int]]:
        """Today's answer counts of a workspace per queue."""
        return dict(self.answered.get(day_key(workspace, utc_day(now))) or {})
