"""The desk and the wallboard in a real browser (Debian's chromium, driven by Playwright).

The whole system runs as processes on loopback, secured as the deployments
are: agent-state serves TLS with the certificate `make deploy-setup` makes,
and knows an administrator token for the router, one for the desk, and a
desktop token per agent; the router and the desk check its certificate
against the CA; the desk knows a supervisor token per workspace. Inquiries come in through ingest's HTTP API, as a channel would
send them. The first test takes screenshots of the desk and the wallboard:
into a temporary folder, or, with OMNIROUTE_SCREENSHOTS=1 (`make screenshots`),
over the README's images in services/desk/screenshots.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from omniroute.embedded import Broker
from omniroute.provision import Options, provision
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2
from tests.support import tools
from tests.support.system import System, inquiry_body, make_agent, new_workspace, running
from tests.support.tiers import embedded_tier_only

# The subject is the desk's page in a browser; agent-state, the router and the
# topics under it are tested on both brokers elsewhere.
pytestmark = [pytest.mark.integration, embedded_tier_only]

README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "services" / "desk" / "screenshots"
CHAT, SMS, EMAIL = inquiry_pb2.CHANNEL_CHAT, inquiry_pb2.CHANNEL_SMS, inquiry_pb2.CHANNEL_EMAIL
VOICE = inquiry_pb2.CHANNEL_VOICE
ADMIN = (("authorization", "Bearer admin-secret"),)

# A workspace per test, so no test routes another's inquiries; the two the
# wallboard shows have supervisor tokens.
WS_FLOW, WS_SCRIPT, WS_EXPIRY, WS_GUARD, WS_OTHER, WS_RESTART, WS_TEAM, WS_CALLBACK, WS_HANDOVER = (
    new_workspace() for _ in range(9)
)
SUPERVISORS = {"sup-flow": WS_FLOW, "sup-other": WS_OTHER}
AGENTS = {  # agent id -> (workspace, desktop token)
    "ada": (WS_FLOW, "ada-token"),
    "bea": (WS_FLOW, "bea-token"),
    "cal": (WS_FLOW, "cal-token"),
    "eve": (WS_SCRIPT, "eve-token"),
    "fay": (WS_EXPIRY, "fay-token"),
    "gus": (WS_GUARD, "gus-token"),
    "hal": (WS_GUARD, "hal-token"),
    "ivy": (WS_OTHER, "ivy-token"),
    "jo": (WS_RESTART, "jo-token"),
    "kim": (WS_TEAM, "kim-token"),
    "lou": (WS_TEAM, "lou-token"),
    "max": (WS_HANDOVER, "max-token"),
    "nia": (WS_HANDOVER, "nia-token"),
    "mo": (WS_CALLBACK, "mo-token"),
}
DESK_ENV = {
    "AGENT_STATE_TOKEN": "desk-secret",
    "DESK_SUPERVISOR_TOKENS": json.dumps(SUPERVISORS),
    "DESK_DEMO_AGENTS": json.dumps({"ada": "ada-token"}),
}


# The flow test's workspace has two queues and a service level for chat; the
# others get one queue that takes everything.
ROUTING = f"""
default: {{}}
workspaces:
  {WS_FLOW}:
    service_levels: {{chat: 60, email: 14400}}
    queues:
      - name: billing
        match: {{skills: [billing]}}
      - name: general
  {WS_HANDOVER}:
    queues:
      - name: front
        match: {{skills: [billing]}}
      - name: vip
        match: {{segments: [vip]}}
        accepts_transfers: false
      - name: back
"""


@pytest.fixture(scope="module")
def system(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """agent-state, router, ingest and the desk, with tokens and TLS as deployed."""
    folder = tmp_path_factory.mktemp("desk")
    routing = folder / "routing.yaml"
    routing.write_text(ROUTING)
    provision(Options(deploy_dir=folder))  # agent-state's certificate (127.0.0.1) and the CA
    secrets = folder / "secrets"
    env = {
        "AGENT_STATE_ALLOW_ANONYMOUS": "false",
        "AGENT_STATE_TLS_CERT_FILE": str(secrets / "agent-state.pem"),
        "AGENT_STATE_TLS_KEY_FILE": str(secrets / "agent-state.key"),
        "AGENT_STATE_TLS_CA_FILE": str(secrets / "ca.pem"),  # the router's and the desk's
        "AGENT_STATE_ADMIN_TOKENS": json.dumps(
            {"router": "router-secret", "desk": "desk-secret", "admin": "admin-secret"}
        ),
        "AGENT_STATE_DESKTOP_TOKENS": json.dumps({t: a for a, (_, t) in AGENTS.items()}),
        "AGENT_STATE_TOKEN": "router-secret",
        # SMS offers expire quickly, so a test can watch one expire; email offers
        # outlive a restart of agent-state.
        "OFFER_TTL_BY_CHANNEL": json.dumps({"sms": 8, "email": 300}),
    }
    system = System(broker, routing_config=str(routing), extra_env=env)
    for started in running(system):
        started.start_desk(**DESK_ENV)
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless chromium from the system's package (Playwright downloads no browser)."""
    executable = tools.require("chromium")  # `make test` installs Debian's package
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def admin(system: System) -> Iterator[agent_state_pb2_grpc.AgentStateStub]:
    """An administrator's gRPC client of agent-state (sets agents up)."""
    ca = Path(system.env["AGENT_STATE_TLS_CA_FILE"]).read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    with grpc.secure_channel(system.agent_state_target, credentials) as channel:
        yield agent_state_pb2_grpc.AgentStateStub(channel)


def create(
    stub: agent_state_pb2_grpc.AgentStateStub,
    agent_id: str,
    capacity: dict[int, int],
    skills: dict[str, int] | None = None,
) -> None:
    """Create the agent (it starts OFFLINE: the person logs in at the desk)."""
    workspace = AGENTS[agent_id][0]
    agent = make_agent(workspace, agent_id, skills or {}, capacity)
    stub.UpsertAgent(agent_state_pb2.UpsertAgentRequest(agent=agent), metadata=ADMIN)


def set_status(stub: agent_state_pb2_grpc.AgentStateStub, agent_id: str, status: int, reason: str = "") -> None:  # fmt: skip
    stub.SetStatus(
        agent_state_pb2.SetStatusRequest(agent_id=agent_id, status=status, reason=reason),  # type: ignore[arg-type]
        metadata=ADMIN,
    )


def open_desk(browser: Browser, system: System, agent_id: str) -> Page:
    """A fresh browser page signed in as the agent through the sign-in form."""
    page = browser.new_context(viewport={"width": 1000, "height": 640}).new_page()
    page.goto(system.desk_url + "/")
    page.fill("#agent-id", agent_id)
    page.fill("#token", AGENTS[agent_id][1])
    page.click("#sign-in-form button[type=submit]")
    try:
        expect(page.locator("#connection")).to_have_text("live", timeout=20_000)
    except AssertionError as failure:
        # Say where it stopped: the sign-in answered with an error, or never answered.
        error = page.locator("#sign-in-error").text_content() or "(none shown)"
        raise AssertionError(
            f"{agent_id}'s desk did not go live; sign-in error: {error}"
        ) from failure
    return page


def go_available(page: Page) -> None:
    page.select_option("#presence", "available")
    expect(page.locator("#presence")).to_have_attribute("data-status", "AGENT_STATUS_AVAILABLE")


def offer_card(page: Page, subject: str) -> Locator:
    return page.locator("#offers .card", has=page.locator(".subject", has_text=subject))


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the flow test's screenshots go: the README's only when asked for."""
    return README_SCREENSHOTS if os.environ.get("OMNIROUTE_SCREENSHOTS") == "1" else tmp_path


def test_an_agent_works_an_inquiry_through_the_desk_while_the_wallboard_follows(
    system: System,
    browser: Browser,
    admin: agent_state_pb2_grpc.AgentStateStub,
    screenshots: Path,
) -> None:
    create(admin, "ada", {CHAT: 2}, {"billing": 3})
    # Colleagues, for a wallboard with more to show: one away, one on email.
    create(admin, "bea", {CHAT: 2}, {"technical": 3})
    create(admin, "cal", {EMAIL: 5}, {"billing": 2})
    set_status(admin, "bea", agent_pb2.AGENT_STATUS_AWAY, "lunch")
    set_status(admin, "cal", agent_pb2.AGENT_STATUS_AVAILABLE)
    board = browser.new_context(viewport={"width": 1000, "height": 560}).new_page()
    # Nothing the pages do is refused by their Content-Security-Policy or fails.
    errors: list[str] = []
    board.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    board.goto(f"{system.desk_url}/wallboard#token=sup-flow")
    expect(board.locator("#workspace")).to_contain_text(WS_FLOW, timeout=20_000)
    expect(board.locator("tr[data-agent=ada]")).to_be_visible(timeout=20_000)

    # The agent picks themself from the sign-in page's list of demo agents.
    desk = browser.new_context(viewport={"width": 1000, "height": 640}).new_page()
    desk.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    desk.goto(system.desk_url + "/")
    desk.get_by_role("button", name="Ada (ada)").click()
    expect(desk.locator("#connection")).to_have_text("live", timeout=20_000)

    # While the agent is offline, the inquiry waits: the wallboard's depth goes up.
    subject = "Charged twice for March"
    system.post_inquiry(
        inquiry_body(
            WS_FLOW,
            "chat",
            subject=subject,
            body="Hello, my card was charged twice for the March invoice.\nCan you refund one?",
            customer={"name": "Maria Gomez", "language": "en"},
            language="en",
            priority=3,
            requiredSkills=[{"name": "billing", "minProficiency": 2}],
        )
    )
    # And one nobody here can take: it keeps waiting in the general queue.
    system.post_inquiry(inquiry_body(WS_FLOW, "chat", subject="Legal question", requiredSkills=[{"name": "legal"}]))  # fmt: skip
    depth = board.locator("#queues tr[data-queue=billing] .depth")
    expect(depth).to_have_text("1", timeout=30_000)
    expect(board.locator("#queues tr[data-queue=general] .depth")).to_have_text("1", timeout=30_000)  # fmt: skip

    # The agent logs in and gets the offer with its content.
    go_available(desk)
    card = offer_card(desk, subject)
    expect(card).to_be_visible(timeout=30_000)
    expect(card.locator(".customer")).to_contain_text("Maria Gomez")
    expect(card.locator(".body")).to_contain_text("charged twice for the March invoice")
    expect(card.locator(".channel")).to_have_text("chat")
    expect(card.locator(".countdown")).to_contain_text("left")
    expect(depth).to_have_text("0", timeout=30_000)
    expect(desk.locator("#capacity")).to_contain_text("chat 1/2", timeout=20_000)
    card.locator(".why summary").click()
    expect(card.locator(".history li")).not_to_have_count(0)
    desk.screenshot(path=str(screenshots / "desk.png"))

    card.locator("button.accept").click()
    task = desk.locator("#tasks .card", has=desk.locator(".subject", has_text=subject))
    expect(task).to_be_visible(timeout=20_000)
    expect(desk.locator("#offers .card")).to_have_count(0)
    expect(board.locator("#queues tr[data-queue=billing] .in-progress")).to_have_text("1", timeout=30_000)  # fmt: skip
    expect(board.locator("tr[data-agent=ada] .tasks")).to_have_text("1", timeout=30_000)
    level = board.locator("#queues tr[data-queue=billing] .service-level")
    expect(level).to_have_text("100% (1/1)", timeout=30_000)
    board.screenshot(path=str(screenshots / "wallboard.png"))

    task.locator("button.resolve").click()
    expect(desk.locator("#tasks .card")).to_have_count(0, timeout=20_000)
    expect(desk.locator("#notices")).to_contain_text(f"“{subject}” resolved")
    expect(board.locator("#queues tr[data-queue=billing] .answered")).to_have_text("1", timeout=30_000)  # fmt: skip
    expect(board.locator("#queues tr[data-queue=billing] .in-progress")).to_have_text("0", timeout=30_000)  # fmt: skip
    expect(board.locator("tr[data-agent=ada] .tasks")).to_have_text("0", timeout=30_000)
    assert errors == []


def test_a_script_in_an_inquiry_shows_as_text_and_never_runs(
    system: System, browser: Browser, admin: agent_state_pb2_grpc.AgentStateStub
) -> None:
    create(admin, "eve", {CHAT: 2})
    desk = open_desk(browser, system, "eve")
    go_available(desk)
    subject = '<img src=x onerror="window.__pwned=1">Refund'
    body = "<script>window.__pwned = 2</script><b>bold?</b>"
    system.post_inquiry(
        inquiry_body(WS_SCRIPT, "chat", subject=subject, body=body, customer={"name": "<i>Eve</i>"})
    )
    card = desk.locator("#offers .card")
    expect(card).to_have_count(1, timeout=30_000)
    expect(card.locator(".subject")).to_have_text(subject)
    expect(card.locator(".body")).to_have_text(body)
    expect(card.locator(".customer")).to_contain_text("<i>Eve</i>")
    assert card.locator("script, img, b, i").count() == 0
    assert desk.evaluate("window.__pwned") is None


def test_a_callback_shows_as_a_call_to_make_with_the_number(
    system: System, browser: Browser, admin: agent_state_pb2_grpc.AgentStateStub
) -> None:
    create(admin, "mo", {VOICE: 1})
    chat = system.post_inquiry(inquiry_body(WS_CALLBACK, "chat", subject="Call me instead"))
    with httpx.Client(base_url=system.ingest_url, timeout=15) as ingest:
        # Once the router lists the waiting chat, its customer asks to be called back.
        deadline = time.monotonic() + 30
        path = f"/v1/workspaces/{WS_CALLBACK}/inquiries/{chat}"
        while ingest.get(f"{path}/position").status_code != 200:
            assert time.monotonic() < deadline, "the router never listed the chat"
            time.sleep(0.2)
        asked = ingest.post(f"{path}/callback", json={"number": "+15550001111", "channel": "chat"})
        assert asked.status_code == 202, asked.text
    desk = open_desk(browser, system, "mo")
    go_available(desk)
    card = offer_card(desk, "Call me instead")
    expect(card).to_be_visible(timeout=30_000)
    expect(card.locator(".channel")).to_have_text("Call back (voice)")
    expect(card.locator(".callback-number")).to_have_text("+15550001111")
    expect(card.locator(".history")).to_contain_text(
        "asked to be called back instead of waiting on chat"
    )


def test_an_offer_that_expires_or_is_withdrawn_disappears_with_a_notice(
    system: System, browser: Browser, admin: agent_state_pb2_grpc.AgentStateStub
) -> None:
    create(admin, "fay", {SMS: 1, CHAT: 1})
    desk = open_desk(browser, system, "fay")
    go_available(desk)
    system.post_inquiry(inquiry_body(WS_EXPIRY, "sms", subject="Missed by the agent"))
    expect(offer_card(desk, "Missed by the agent")).to_be_visible(timeout=30_000)
    # Nobody answers: the offer expires (SMS offers live 8 s here).
    expect(desk.locator("#offers .card")).to_have_count(0, timeout=30_000)
    expect(desk.locator("#notices")).to_contain_text("“Missed by the agent” expired")

    # Back, a new chat offer (20 s to answer); the agent is set away from elsewhere
    # (another screen, a supervisor): the offer is withdrawn.
    go_available(desk)
    system.post_inquiry(inquiry_body(WS_EXPIRY, "chat", subject="Taken back"))
    expect(offer_card(desk, "Taken back")).to_be_visible(timeout=30_000)
    set_status(admin, "fay", agent_pb2.AGENT_STATUS_AWAY, "meeting")
    expect(desk.locator("#offers .card")).to_have_count(0, timeout=30_000)
    expect(desk.locator("#notices")).to_contain_text("“Taken back” was withdrawn")


def test_an_agent_cannot_see_or_act_on_another_agents_offer(
    system: System, admin: agent_state_pb2_grpc.AgentStateStub
) -> None:
    create(admin, "gus", {CHAT: 1})
    create(admin, "hal", {CHAT: 1})
    set_status(admin, "gus", agent_pb2.AGENT_STATUS_AVAILABLE)
    inquiry_id = system.post_inquiry(inquiry_body(WS_GUARD, "chat", subject="For gus only"))
    get_gus = agent_state_pb2.GetAgentRequest(agent_id="gus")
    deadline = time.monotonic() + 30
    while not admin.GetAgent(get_gus, metadata=ADMIN).reservations:
        assert time.monotonic() < deadline, "the inquiry was never offered to gus"
        time.sleep(0.1)
    hal = {"Authorization": "Bearer hal-token"}
    answer = {"reservation_id": "", "request_id": "r1"}
    with httpx.Client(base_url=system.desk_url, timeout=10) as http:
        # hal's token on gus's desk: agent-state refuses, whatever the path says.
        for path in (f"/api/agents/gus/offers/{inquiry_id}/accept", "/api/agents/gus"):
            response = http.request("POST" if "offers" in path else "GET", path, headers=hal, json=answer)  # fmt: skip
            assert response.status_code == 403, (path, response.text)
        with http.stream("GET", "/api/agents/gus/events", headers=hal) as stream:
            assert stream.status_code == 403
        # On hal's own desk, gus's offer is not there to accept.
        response = http.post(f"/api/agents/hal/offers/{inquiry_id}/accept", headers=hal, json=answer)  # fmt: skip
        assert response.status_code == 409, response.text
        assert http.get("/api/agents/gus").status_code == 401
        assert http.post(f"/api/agents/gus/offers/{inquiry_id}/accept", json=answer).status_code == 401  # fmt: skip
        # The edge names the field it refuses.
        bad = http.post("/api/agents/hal/status", headers=hal, json={"status": "away", "request_id": "r2"})  # fmt: skip
        assert bad.status_code == 422 and "reason" in bad.text
    gus = admin.GetAgent(get_gus, metadata=ADMIN)
    assert [(r.inquiry_id, r.accepted) for r in gus.reservations] == [(inquiry_id, False)]


def test_a_supervisor_sees_only_the_workspace_of_their_token(
    system: System, browser: Browser, admin: agent_state_pb2_grpc.AgentStateStub
) -> None:
    create(admin, "ivy", {CHAT: 1})
    create(admin, "ada", {CHAT: 2})  # another workspace's agent
    board = browser.new_context().new_page()
    board.goto(f"{system.desk_url}/wallboard#token=sup-other")
    expect(board.locator("tr[data-agent=ivy]")).to_be_visible(timeout=20_000)
    expect(board.locator("#workspace")).to_contain_text(WS_OTHER)
    set_status(admin, "ada", agent_pb2.AGENT_STATUS_AWAY, "break")  # a change elsewhere
    set_status(admin, "ivy", agent_pb2.AGENT_STATUS_AVAILABLE)
    expect(board.locator("tr[data-agent=ivy]")).to_have_attribute("data-status", "AGENT_STATUS_AVAILABLE", timeout=20_000)  # fmt: skip
    assert board.locator("tr[data-agent=ada]").count() == 0
    assert board.locator("#agents tbody tr").count() == 1

    stranger = browser.new_context().new_page()
    stranger.goto(f"{system.desk_url}/wallboard#token=not-a-token")
    expect(stranger.locator("#sign-in-error")).to_have_text("Unknown supervisor token.", timeout=20_000)  # fmt: skip
    assert stranger.locator("#agents tbody tr").count() == 0
    # An agent's desktop token is no supervisor token either.
    with httpx.Client(base_url=system.desk_url, timeout=10) as http:
        response = http.get("/api/wallboard/events", headers={"Authorization": "Bearer ivy-token"})
        assert response.status_code == 401


def test_an_agent_holds_several_tasks_and_follows_up_escalates_and_transfers_them(
    system: System, browser: Browser, admin: agent_state_pb2_grpc.AgentStateStub
) -> None:
    create(admin, "kim", {CHAT: 3})
    create(admin, "lou", {CHAT: 2})
    kim = open_desk(browser, system, "kim")
    go_available(kim)
    subjects = ["Follow me up", "Above my authority", "Hand me over"]
    for subject in subjects:
        system.post_inquiry(
            inquiry_body(WS_TEAM, "chat", subject=subject, body=f"About: {subject}")
        )
    expect(kim.locator("#offers .card")).to_have_count(3, timeout=30_000)
    for subject in subjects:
        offer_card(kim, subject).locator("button.accept").click()
    tasks = kim.locator("#tasks .card")
    expect(tasks).to_have_count(3, timeout=20_000)
    expect(kim.locator("#capacity")).to_contain_text("chat 3/3")

    def task(subject: str) -> Locator:
        return kim.locator("#tasks .card", has=kim.locator(".subject", has_text=subject))

    task("Follow me up").locator(".follow-up-note").fill("call back after the refund")
    task("Follow me up").locator("button.follow-up").click()
    expect(kim.locator("#notices")).to_contain_text("Follow-up of “Follow me up” scheduled")

    task("Above my authority").locator(".escalation-reason").fill("refund above my authority")
    task("Above my authority").locator("button.escalate").click()
    expect(kim.locator("#notices")).to_contain_text("“Above my authority” escalated")
    expect(tasks).to_have_count(1, timeout=20_000)

    # A colleague comes in; the last task goes to them, with its content.
    lou = open_desk(browser, system, "lou")
    go_available(lou)
    target = task("Hand me over").locator("select.transfer-to")
    target.focus()  # loads the available colleagues
    expect(target.locator("option[value=lou]")).to_have_count(1, timeout=20_000)
    target.select_option("lou")
    task("Hand me over").locator("button.transfer").click()
    expect(kim.locator("#notices")).to_contain_text("“Hand me over” transferred")
    expect(tasks).to_have_count(0, timeout=20_000)
    moved = lou.locator("#tasks .card")
    expect(moved).to_have_count(1, timeout=30_000)
    expect(moved.locator(".subject")).to_have_text("Hand me over", timeout=20_000)
    expect(moved.locator(".body")).to_have_text("About: Hand me over")
    held = admin.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="lou"), metadata=ADMIN)
    assert [r.accepted for r in held.reservations] == [True]


def test_an_agent_transfers_a_task_to_a_queue_with_a_note_the_next_agent_reads(
    system: System, browser: Browser, admin: agent_state_pb2_grpc.AgentStateStub
) -> None:
    create(admin, "max", {CHAT: 1}, {"billing": 3})
    create(admin, "nia", {CHAT: 1})  # no billing: only the back office queue fits her
    max_desk, nia_desk = open_desk(browser, system, "max"), open_desk(browser, system, "nia")
    go_available(max_desk)
    go_available(nia_desk)
    body = inquiry_body(WS_HANDOVER, "chat", subject="Wrong team", requiredSkills=[{"name": "billing"}])  # fmt: skip
    system.post_inquiry(body)
    offer_card(max_desk, "Wrong team").locator("button.accept").click()
    task = max_desk.locator("#tasks .card", has=max_desk.locator(".subject", has_text="Wrong team"))
    target = task.locator("select.transfer-to")
    target.focus()  # loads the colleagues and the queues that accept transfers
    expect(target.locator("option[data-queue=back]")).to_have_count(1, timeout=20_000)
    assert target.locator("option[data-queue=vip]").count() == 0
    target.select_option("queue:back")
    task.locator(".transfer-note").fill("asked about a parcel, not a bill")
    task.locator("button.transfer").click()
    expect(max_desk.locator("#notices")).to_contain_text("“Wrong team” transferred to queue back")
    expect(max_desk.locator("#tasks .card")).to_have_count(0, timeout=20_000)
    offer = offer_card(nia_desk, "Wrong team")
    expect(offer).to_have_count(1, timeout=30_000)
    expect(offer.locator(".history li").last).to_have_text(
        "Transferred by max to queue back: asked about a parcel, not a bill."
    )


def test_the_desk_reconnects_after_the_desk_and_agent_state_restart(
    system: System, browser: Browser, admin: agent_state_pb2_grpc.AgentStateStub
) -> None:
    """Last in this module: it restarts services the other tests use."""
    create(admin, "jo", {EMAIL: 2})
    desk = open_desk(browser, system, "jo")
    go_available(desk)
    connection = desk.locator("#connection")

    system.processes["desk"].stop()
    expect(connection).to_have_text("reconnecting…", timeout=20_000)
    system.start_desk(**DESK_ENV)
    expect(connection).to_have_text("live", timeout=30_000)
    system.post_inquiry(inquiry_body(WS_RESTART, "email", subject="After the desk restarted"))
    expect(offer_card(desk, "After the desk restarted")).to_be_visible(timeout=30_000)

    system.processes["agent-state"].stop()
    expect(connection).to_have_text("reconnecting…", timeout=20_000)
    system.start_agent_state()
    expect(connection).to_have_text("live", timeout=60_000)
    # The open offer is still there (agent-state recovered it) and can be taken.
    card = offer_card(desk, "After the desk restarted")
    expect(card).to_be_visible()
    card.locator("button.accept").click()
    expect(desk.locator("#tasks .card")).to_have_count(1, timeout=30_000)
