// The supervisor wallboard: one workspace's queues and agents, live.
"use strict";

(() => {
  const { el, clear, enumLabel, duration, seconds, stream, showConnection } = Omni;
  const $ = (id) => document.getElementById(id);
  const TOKEN = "omniroute.wallboard.token";
  const STATUSES = ["AGENT_STATUS_AVAILABLE", "AGENT_STATUS_WRAP_UP", "AGENT_STATUS_AWAY", "AGENT_STATUS_OFFLINE"];

  let live = null;
  let skew = 0;
  const agents = new Map(); // id -> record (highest version kept)
  let snapshot = null;
  const now = () => Date.now() / 1000 + skew;

  function start(token) {
    sessionStorage.setItem(TOKEN, token);
    $("sign-in").hidden = true;
    $("board").hidden = false;
    $("sign-out").hidden = false;
    live = stream("/api/wallboard/events", token, onEvent, (state) => {
      showConnection(state);
      if (state === "denied") signOut("Unknown supervisor token.");
    });
  }

  function signOut(message) {
    if (live) live.stop();
    sessionStorage.removeItem(TOKEN);
    agents.clear();
    snapshot = null;
    $("board").hidden = true;
    $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message || "";
    $("workspace").textContent = "";
  }

  function onEvent(name, data) {
    if (data.now) skew = data.now - Date.now() / 1000;
    if (name === "workspace") {
      $("workspace").textContent = `· ${data.workspace}`;
    } else if (name === "agents") {
      agents.clear();
      for (const agent of data.agents) keep(agent);
      renderAgents();
    } else if (name === "agent") {
      if (data.change === "CHANGE_REMOVED") agents.delete(data.agent.id);
      else keep(data.agent);
      renderAgents();
    } else if (name === "queues") {
      snapshot = data;
      renderQueues();
    } else if (name === "error") {
      showConnection("reconnecting");
    }
  }

  function keep(agent) {
    const held = agents.get(agent.id);
    if (!held || Number(agent.version || 0) >= Number(held.version || 0)) agents.set(agent.id, agent);
  }

  function renderQueues() {
    const body = $("queues").querySelector("tbody");
    clear(body);
    for (const queue of snapshot.queues || []) {
      const answered = Number(queue.answered_today || 0);
      const measured = answered - Number(queue.answered_without_target_today || 0);
      const within = Number(queue.answered_within_target_today || 0);
      const level = measured > 0 ? `${Math.round((100 * within) / measured)}% (${within}/${measured})` : "–";
      const row = el("tr", { "data-queue": queue.name });
      row.append(
        el("td", {}, queue.name),
        el("td", { class: "depth" }, String(queue.waiting || 0)),
        el("td", { class: "oldest" }, queue.waiting ? duration(queue.oldest_wait_s || 0) : "–"),
        el("td", { class: "offered" }, String(queue.offered || 0)),
        el("td", { class: "in-progress" }, String(queue.in_progress || 0)),
        el("td", { class: "scheduled" }, String(queue.scheduled || 0)),
        el("td", { class: "answered" }, String(answered)),
        el("td", { class: "service-level" }, level),
      );
      if ((queue.waiting || 0) > 0) row.classList.add("waiting");
      body.appendChild(row);
    }
    tick();
  }

  function renderAgents() {
    const counts = new Map(STATUSES.map((s) => [s, 0]));
    for (const agent of agents.values()) {
      const status = agent.status || "AGENT_STATUS_OFFLINE";
      counts.set(status, (counts.get(status) || 0) + 1);
    }
    const tally = $("status-counts");
    clear(tally);
    for (const [status, count] of counts) {
      tally.appendChild(el("li", { "data-status": status }, `${enumLabel(status, "AGENT_STATUS_")}: ${count}`));
    }
    const body = $("agents").querySelector("tbody");
    clear(body);
    const order = (a) => STATUSES.indexOf(a.status || "AGENT_STATUS_OFFLINE");
    const sorted = [...agents.values()].sort((a, b) => order(a) - order(b) || (a.name || a.id).localeCompare(b.name || b.id));
    for (const agent of sorted) {
      const reservations = agent.reservations || [];
      const offered = reservations.filter((r) => !r.accepted).length;
      const tasks = reservations.filter((r) => r.accepted).length;
      let status = enumLabel(agent.status || "AGENT_STATUS_OFFLINE", "AGENT_STATUS_");
      if (agent.away_reason) status += ` (${agent.away_reason.replace(/_/g, " ")})`;
      const load = (agent.capacities || []).filter((c) => c.capacity).map((c) => `${enumLabel(c.channel, "CHANNEL_")} ${c.load || 0}/${c.capacity}`);
      const row = el("tr", { "data-agent": agent.id, "data-status": agent.status || "AGENT_STATUS_OFFLINE" });
      const since = el("td", { class: "since" });
      since.dataset.since = String(seconds(agent.status_since));
      row.append(
        el("td", {}, agent.name || agent.id),
        el("td", {}, enumLabel(agent.tier, "TIER_")),
        el("td", { class: "status" }, status),
        since,
        el("td", { class: "offers" }, String(offered)),
        el("td", { class: "tasks" }, String(tasks)),
        el("td", { class: "load" }, load.join(" · ")),
      );
      body.appendChild(row);
    }
    tick();
  }

  function tick() {
    const t = now();
    for (const cell of document.querySelectorAll("td.since")) {
      const since = Number(cell.dataset.since || 0);
      cell.textContent = since ? duration(t - since) : "–";
    }
    if (snapshot && snapshot.taken_at) {
      const age = t - seconds(snapshot.taken_at);
      $("as-of").textContent = `queues as of ${new Date(seconds(snapshot.taken_at) * 1000).toLocaleTimeString()}${age > 10 ? " (stale)" : ""}`;
    }
  }

  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    start($("token").value.trim());
  });
  $("sign-out").addEventListener("click", () => signOut());
  setInterval(tick, 1000);

  // A link may carry the token in its fragment (#token=...): never sent to a server.
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const fromLink = fragment.get("token");
  if (fromLink) history.replaceState(null, "", window.location.pathname);
  const token = fromLink || sessionStorage.getItem(TOKEN);
  if (token) start(token);
  else $("sign-in").hidden = false;
})();
