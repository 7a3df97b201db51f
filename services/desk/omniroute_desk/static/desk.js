// The agent desk: sign in, presence, live offers with their content, tasks.
"use strict";

(() => {
  const { el, clear, enumLabel, duration, seconds, requestId, safeUrl, api, stream, showConnection } = Omni;
  const $ = (id) => document.getElementById(id);
  const SESSION = "omniroute.desk.session";
  const CONTENTS = "omniroute.desk.contents";

  let session = null; // {agentId, token}
  let live = null; // the event stream
  let agent = null; // the agent's record as agent-state sent it last
  let skew = 0; // server clock - this browser's clock, seconds
  const offers = new Map(); // reservation id -> {offer, seen, busy, card}
  const taskCards = new Map(); // reservation id -> card
  let contents = new Map(); // inquiry id -> assignment (with the inquiry's content)

  const now = () => Date.now() / 1000 + skew;
  const path = (suffix) => `/api/agents/${encodeURIComponent(session.agentId)}${suffix}`;

  // -- session -------------------------------------------------------------------

  function load() {
    try {
      session = JSON.parse(sessionStorage.getItem(SESSION) || "null");
      contents = new Map(JSON.parse(sessionStorage.getItem(CONTENTS) || "[]"));
    } catch (e) {
      session = null;
    }
    if (session) start();
    else showSignIn();
  }

  function saveContents() {
    // Kept for this tab only, so a reload still shows the tasks' content.
    sessionStorage.setItem(CONTENTS, JSON.stringify([...contents].slice(-50)));
  }

  async function showSignIn(message) {
    $("work").hidden = true;
    $("who").hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message || "";
    try {
      const options = await api("GET", "/api/sign-in-options");
      const list = $("demo-agent-list");
      clear(list);
      for (const option of options.agents) {
        const button = el("button", { type: "button", class: "demo-agent" }, `${option.name} (${option.id})`);
        button.addEventListener("click", () => signIn(option.id, option.token));
        list.appendChild(el("li")).appendChild(button);
      }
      $("demo-agents").hidden = options.agents.length === 0;
    } catch (e) {
      $("demo-agents").hidden = true;
    }
  }

  async function signIn(agentId, token) {
    $("sign-in-error").textContent = "";
    try {
      const reply = await api("POST", "/api/session", null, { agent_id: agentId, token });
      session = { agentId, token };
      sessionStorage.setItem(SESSION, JSON.stringify(session));
      takeAgent(reply);
      start();
    } catch (e) {
      $("sign-in-error").textContent = `Sign-in failed: ${e.message}`;
    }
  }

  function start() {
    $("sign-in").hidden = true;
    $("work").hidden = false;
    $("who").hidden = false;
    showConnection("connecting");
    live = stream(path("/events"), session.token, onEvent, (state) => {
      showConnection(state);
      if (state === "denied") signOut("Your session ended; sign in again.");
    });
  }

  async function signOut(message) {
    if (live) live.stop();
    live = null;
    if (!message && session) {
      try {
        await act("status", { status: "offline" });
      } catch (e) {
        /* signing out works without agent-state too */
      }
    }
    session = null;
    agent = null;
    offers.clear();
    taskCards.clear();
    contents.clear();
    sessionStorage.removeItem(SESSION);
    sessionStorage.removeItem(CONTENTS);
    clear($("offers"));
    clear($("tasks"));
    showSignIn(message);
  }

  // -- events from the desk service -------------------------------------------------

  function onEvent(name, data) {
    if (name === "agent") takeAgent(data);
    else if (name === "offer") takeOffer(data);
    else if (name === "error") showConnection("reconnecting");
  }

  function takeAgent(reply) {
    if (reply.now) skew = reply.now - Date.now() / 1000;
    const record = reply.agent;
    if (agent && Number(record.version || 0) < Number(agent.version || 0)) return;
    agent = record;
    reconcileOffers();
    renderAgent();
    renderTasks();
  }

  // An open offer the agent's record no longer holds was taken back or expired.
  // An offer counts only once a record has shown it (the record read just
  // before an offer arrives does not hold it yet), or once it is past expiry.
  function reconcileOffers() {
    if (!agent) return;
    const held = new Map((agent.reservations || []).map((r) => [r.reservation_id, r]));
    for (const [id, entry] of offers) {
      const reservation = held.get(id);
      if (reservation && !reservation.accepted) {
        entry.seen = true;
        continue;
      }
      if (reservation && reservation.accepted) {
        dropOffer(id); // accepted (here or on another screen): now a task
        continue;
      }
      if (entry.busy || !(entry.seen || now() > seconds(expiresAt(entry.offer)) + 2)) continue;
      // agent-state also pushes the offer back with its status and reason; give
      // that a moment to arrive, as it says why.
      entry.missingSince = entry.missingSince || now();
      if (now() - entry.missingSince >= 2) {
        const expired = now() >= seconds(expiresAt(entry.offer)) - 1;
        notice(`Offer “${subjectOf(entry.offer.assignment)}” ${expired ? "expired" : "was withdrawn"}.`, "warn");
        dropOffer(id);
      }
    }
  }

  function takeOffer(data) {
    if (data.now) skew = data.now - Date.now() / 1000;
    const id = data.reservation && data.reservation.reservation_id;
    if (!id) return;
    const assignment = data.assignment || {};
    if (data.status === "STATUS_WITHDRAWN" || data.status === "STATUS_TIMED_OUT") {
      const entry = offers.get(id);
      const what = data.status === "STATUS_TIMED_OUT" ? "expired" : "was withdrawn";
      const why = data.reason ? ` (${data.reason.replace(/_/g, " ")})` : "";
      notice(`Offer “${subjectOf(entry ? entry.offer.assignment : assignment)}” ${what}${why}.`, "warn");
      dropOffer(id);
      return;
    }
    if (data.status === "STATUS_MESSAGE") {
      // The customer wrote again on this offer or task: add it to what is shown.
      const message = (data.message && data.message.message) || {};
      const known = contents.get(data.reservation.inquiry_id);
      if (known && known.inquiry && message.body) {
        known.inquiry.body = known.inquiry.body ? `${known.inquiry.body}\n\n${message.body}` : message.body;
        saveContents();
        renderTasks();
        renderOffers();
      }
      notice(`New message on “${subjectOf(known || assignment)}”: ${message.body || "(an attachment)"}`, "info");
      return;
    }
    if (assignment.inquiry) {
      contents.set(assignment.inquiry_id || data.reservation.inquiry_id, assignment);
      saveContents();
    }
    if (data.reservation.accepted) {
      renderTasks(); // a task transferred to this agent
      return;
    }
    if (!offers.has(id)) {
      offers.set(id, { offer: data, seen: false, busy: false, card: offerCard(data) });
      $("offers").appendChild(offers.get(id).card);
    }
    reconcileOffers();
    renderOffers();
  }

  function dropOffer(id) {
    const entry = offers.get(id);
    if (entry && entry.card) entry.card.remove();
    offers.delete(id);
    renderOffers();
  }

  // -- actions -------------------------------------------------------------------------

  async function act(what, body, suffix) {
    const reply = await api("POST", path(suffix || `/${what}`), session.token, { ...body, request_id: requestId() });
    takeAgent(reply);
    return reply;
  }

  async function answerOffer(entry, verb, reason) {
    const reservation = entry.offer.reservation;
    entry.busy = true;
    setError(entry.card, "");
    try {
      await act(verb, { reservation_id: reservation.reservation_id, reason: reason || "" }, `/offers/${encodeURIComponent(reservation.inquiry_id)}/${verb}`);
      if (verb === "decline") notice(`You declined “${subjectOf(entry.offer.assignment)}”.`);
      dropOffer(reservation.reservation_id);
    } catch (e) {
      entry.busy = false;
      setError(entry.card, e.message);
    }
  }

  async function finish(card, inquiryId, body, verb, done) {
    setError(card, "");
    try {
      await act(verb, body, `/tasks/${encodeURIComponent(inquiryId)}/${verb}`);
      notice(done);
    } catch (e) {
      setError(card, e.message);
    }
  }

  $("presence").addEventListener("change", async (event) => {
    const [status, reason] = event.target.value.split(":");
    try {
      await act("status", { status, reason: reason || "" });
    } catch (e) {
      notice(`Could not change status: ${e.message}`, "warn");
      renderAgent();
    }
  });

  $("sign-out").addEventListener("click", () => signOut());
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("agent-id").value.trim(), $("token").value);
  });

  // -- rendering ----------------------------------------------------------------------

  function subjectOf(assignment) {
    const inquiry = (assignment && assignment.inquiry) || {};
    return inquiry.subject || "(no subject)";
  }

  function expiresAt(offer) {
    return (offer.reservation && offer.reservation.expires_at) || (offer.assignment && offer.assignment.offer_expires_at);
  }

  function setError(card, message) {
    card.querySelector(".error").textContent = message;
  }

  function notice(text, kind) {
    const node = el("p", { class: `notice ${kind || ""}` }, text);
    const close = el("button", { type: "button", class: "dismiss", title: "Dismiss" }, "×");
    close.addEventListener("click", () => node.remove());
    node.appendChild(close);
    $("notices").prepend(node);
    setTimeout(() => node.remove(), 20000);
  }

  function renderAgent() {
    if (!agent) return;
    $("agent-name").textContent = `${agent.name || agent.id} · ${enumLabel(agent.tier, "TIER_") || "representative"}`;
    const status = agent.status || "AGENT_STATUS_OFFLINE";
    let value = { AGENT_STATUS_AVAILABLE: "available", AGENT_STATUS_WRAP_UP: "wrap_up", AGENT_STATUS_OFFLINE: "offline" }[status];
    if (status === "AGENT_STATUS_AWAY") {
      value = `away:${agent.away_reason || "break"}`;
      const select = $("presence");
      if (![...select.options].some((o) => o.value === value)) {
        select.appendChild(el("option", { value }, `Away: ${(agent.away_reason || "").replace(/_/g, " ")}`));
      }
    }
    $("presence").value = value;
    $("presence").dataset.status = status;
    const since = seconds(agent.status_since);
    $("status-detail").textContent = since ? `for ${duration(now() - since)}` : "";
    const load = (agent.capacities || []).map((c) => `${enumLabel(c.channel, "CHANNEL_")} ${c.load || 0}/${c.capacity || 0}`);
    $("capacity").textContent = load.length ? `Capacity: ${load.join(" · ")}` : "";
  }

  function renderOffers() {
    const box = $("offers");
    box.querySelectorAll(".empty").forEach((n) => n.remove());
    if (offers.size === 0) box.appendChild(el("p", { class: "empty" }, "No offers right now."));
    $("offer-count").textContent = offers.size ? String(offers.size) : "";
    tick();
  }

  function renderTasks() {
    const box = $("tasks");
    const accepted = ((agent && agent.reservations) || []).filter((r) => r.accepted);
    const ids = new Set(accepted.map((r) => r.reservation_id));
    for (const [id, card] of taskCards) {
      if (!ids.has(id)) {
        card.remove();
        taskCards.delete(id);
      }
    }
    for (const reservation of accepted) {
      if (!taskCards.has(reservation.reservation_id)) {
        const card = taskCard(reservation);
        taskCards.set(reservation.reservation_id, card);
        box.appendChild(card);
        if (!contents.has(reservation.inquiry_id)) fetchContent(reservation);
      }
    }
    box.querySelectorAll(".empty").forEach((n) => n.remove());
    if (taskCards.size === 0) box.appendChild(el("p", { class: "empty" }, "No tasks in hand."));
    $("task-count").textContent = taskCards.size ? String(taskCards.size) : "";
  }

  function fillCard(card, assignment, reservation) {
    const inquiry = assignment.inquiry || {};
    const customer = inquiry.customer || {};
    card.dataset.inquiry = reservation.inquiry_id;
    card.dataset.reservation = reservation.reservation_id;
    const callback = assignment.callback;
    const channel = enumLabel(assignment.channel || reservation.channel || inquiry.channel, "CHANNEL_");
    card.querySelector(".channel").textContent = callback ? `Call back (${channel})` : channel;
    card.querySelector(".subject").textContent = assignment.inquiry ? subjectOf(assignment) : `Inquiry ${reservation.inquiry_id}`;
    const who = [customer.name || "Unknown customer"];
    if (customer.contact_address) who.push(customer.contact_address);
    if (customer.segment) who.push(customer.segment);
    card.querySelector(".customer").textContent = who.join(" · ");
    const facts = card.querySelector(".facts");
    const add = (term, value) => {
      if (value === undefined || value === null || value === "") return null;
      facts.appendChild(el("dt", {}, term));
      return facts.appendChild(el("dd", {}, value));
    };
    if (callback) {
      // An outbound call to make: the customer asked to be called back instead of waiting.
      const call = add("Call back on", callback.number);
      if (call) call.classList.add("callback-number");
      add("Waited on", enumLabel(callback.origin_channel, "CHANNEL_"));
    }
    add("Language", inquiry.language || customer.language);
    add("Priority", String(inquiry.priority || 0));
    add("Queue", assignment.queue);
    add("Kind", enumLabel(inquiry.kind, "INQUIRY_KIND_"));
    const waited = add("Waited", "–");
    if (waited) waited.classList.add("waited");
    const body = card.querySelector(".body");
    body.textContent = assignment.inquiry ? inquiry.body || "" : "The content of this inquiry is not available on this screen.";
    const attachments = card.querySelector(".attachments");
    for (const file of inquiry.attachments || []) {
      const label = `${file.name || "attachment"}${file.content_type ? ` (${file.content_type})` : ""}`;
      const url = safeUrl(file.uri || "");
      const item = el("li");
      if (url) item.appendChild(el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label));
      else item.textContent = label;
      attachments.appendChild(item);
    }
    const history = card.querySelector(".history");
    const reasons = [];
    if ((assignment.attempt || 1) > 1) reasons.push(`Offer number ${assignment.attempt}.`);
    if (assignment.escalation_step) reasons.push(`Escalation step ${assignment.escalation_step} of the queue's ladder.`);
    if (inquiry.thread_id) reasons.push(`Part of conversation ${inquiry.thread_id}.`);
    for (const entry of assignment.history || []) reasons.push(describeStep(entry));
    if (!reasons.length) reasons.push("First offer: you have the skills, language and a free slot.");
    for (const reason of reasons) history.appendChild(el("li", {}, reason));
    card.dataset.received = String(seconds(inquiry.received_at) || seconds(assignment.assigned_at));
  }

  // The router's history entries ("declined:ana", "escalated:ana:tier2:why") in words.
  function describeStep(entry) {
    const [what, who, ...rest] = String(entry).split(":");
    switch (what) {
      case "offered": return `Offered to ${who}.`;
      case "declined": return `Declined by ${who}.`;
      case "offer_timeout": return `Not answered in time by ${who}.`;
      case "withdrawn": return `Taken back from ${who}.`;
      case "follow_up": return `Follow-up scheduled by ${who}, now due.`;
      case "callback_requested": return `The customer asked to be called back instead of waiting on ${who}.`;
      case "escalated": {
        const tier = (rest[0] || "").replace("tier", "tier ");
        const why = rest.slice(1).join(":");
        return `Escalated by ${who}${tier ? ` to ${tier}` : ""}${why ? `: ${why}` : ""}.`;
      }
      case "transferred": { // transferred:<agent>:<queue>[:unknown_queue:<asked>]:<note>
        const queue = rest[0] || "";
        const note = (rest[1] === "unknown_queue" ? rest.slice(3) : rest.slice(1)).join(":");
        return `Transferred by ${who} to queue ${queue}${note ? `: ${note}` : ""}.`;
      }
      default: return String(entry);
    }
  }

  function offerCard(offer) {
    const card = $("card-template").content.firstElementChild.cloneNode(true);
    card.classList.add("offer");
    fillCard(card, offer.assignment || {}, offer.reservation);
    card.dataset.expires = String(seconds(expiresAt(offer)));
    const actions = card.querySelector(".actions");
    const accept = el("button", { type: "button", class: "accept primary" }, "Accept");
    const reason = el("select", { class: "decline-reason", title: "Decline reason" });
    for (const [value, label] of [["busy", "Busy"], ["wrong_skill", "Not my skill"], ["language", "Language"], ["other", "Other"]]) {
      reason.appendChild(el("option", { value }, label));
    }
    const decline = el("button", { type: "button", class: "decline" }, "Decline");
    const entry = () => offers.get(offer.reservation.reservation_id);
    accept.addEventListener("click", () => entry() && answerOffer(entry(), "accept"));
    decline.addEventListener("click", () => entry() && answerOffer(entry(), "decline", reason.value));
    actions.append(accept, reason, decline);
    return card;
  }

  function taskCard(reservation) {
    const card = $("card-template").content.firstElementChild.cloneNode(true);
    card.classList.add("task");
    const assignment = contents.get(reservation.inquiry_id) || {};
    fillCard(card, assignment, reservation);
    card.querySelector(".countdown").textContent = "in progress";
    const inquiryId = reservation.inquiry_id;
    const subject = assignment.inquiry ? subjectOf(assignment) : inquiryId;
    const actions = card.querySelector(".actions");

    const resolve = el("button", { type: "button", class: "resolve primary" }, "Resolved");
    resolve.addEventListener("click", () => finish(card, inquiryId, { outcome: "resolved" }, "complete", `“${subject}” resolved.`));

    const followAt = el("input", { type: "datetime-local", class: "follow-up-at", title: "Follow up at" });
    followAt.value = localInput(Date.now() + 24 * 3600 * 1000);
    const followNote = el("input", { type: "text", class: "follow-up-note", placeholder: "Note", maxLength: 2000 });
    const follow = el("button", { type: "button", class: "follow-up" }, "Follow up");
    follow.addEventListener("click", () => {
      const due = new Date(followAt.value);
      if (Number.isNaN(due.getTime())) return setError(card, "follow_up_at: choose a date and time");
      finish(card, inquiryId, { outcome: "follow_up", follow_up_at: due.toISOString(), note: followNote.value }, "complete", `Follow-up of “${subject}” scheduled.`);
    });

    const tier = el("select", { class: "escalate-to", title: "Escalate to" });
    for (const [value, label] of [["next", "Next tier"], ["specialist", "Specialist"], ["supervisor", "Supervisor"]]) {
      tier.appendChild(el("option", { value }, label));
    }
    const escalateReason = el("input", { type: "text", class: "escalation-reason", placeholder: "Why", maxLength: 500 });
    const escalate = el("button", { type: "button", class: "escalate" }, "Escalate");
    escalate.addEventListener("click", () =>
      finish(card, inquiryId, { outcome: "escalated", escalate_to: tier.value, escalation_reason: escalateReason.value }, "complete", `“${subject}” escalated.`),
    );

    // A colleague (option value: the agent id) or a queue (data-queue), with a
    // note for whoever takes it next (a queue transfer keeps it in the history).
    const target = el("select", { class: "transfer-to", title: "Transfer to" });
    target.appendChild(el("option", { value: "" }, "Transfer to…"));
    target.addEventListener("focus", () => loadColleagues(target));
    const transferNote = el("input", { type: "text", class: "transfer-note", placeholder: "Note for the next agent", maxLength: 2000 });
    const transfer = el("button", { type: "button", class: "transfer" }, "Transfer");
    transfer.addEventListener("click", () => {
      if (!target.value) return setError(card, "target_agent_id: choose a colleague or a queue");
      const queue = target.selectedOptions[0].dataset.queue;
      const body = queue
        ? { target_queue: queue, note: transferNote.value }
        : { target_agent_id: target.value, reason: "transfer" };
      finish(card, inquiryId, body, "transfer", `“${subject}” transferred${queue ? ` to queue ${queue}` : ""}.`);
    });

    const row = (...nodes) => actions.appendChild(el("div", { class: "row" })).append(...nodes);
    row(resolve);
    row(followAt, followNote, follow);
    row(tier, escalateReason, escalate);
    row(target, transferNote, transfer);
    return card;
  }

  // A task whose offer did not come to this screen (transferred in, opened
  // elsewhere): the desk looks its content up in the router's assignments.
  async function fetchContent(reservation) {
    try {
      const reply = await api("GET", path(`/tasks/${encodeURIComponent(reservation.inquiry_id)}`), session.token);
      contents.set(reservation.inquiry_id, reply.assignment);
      saveContents();
      const old = taskCards.get(reservation.reservation_id);
      if (!old) return;
      const card = taskCard(reservation);
      old.replaceWith(card);
      taskCards.set(reservation.reservation_id, card);
    } catch (e) {
      /* the card says the content is not available */
    }
  }

  async function loadColleagues(select) {
    try {
      const reply = await api("GET", path("/colleagues"), session.token);
      const chosen = select.value;
      while (select.children.length > 1) select.lastElementChild.remove();
      const people = select.appendChild(el("optgroup", { label: "Colleagues" }));
      for (const colleague of reply.agents) {
        people.appendChild(el("option", { value: colleague.id }, `${colleague.name} (tier ${colleague.tier})`));
      }
      const queues = select.appendChild(el("optgroup", { label: "Queues" }));
      for (const name of reply.queues || []) {
        queues.appendChild(el("option", { value: `queue:${name}`, "data-queue": name }, `Queue ${name}`));
      }
      select.value = chosen;
    } catch (e) {
      /* the list stays as it was */
    }
  }

  function localInput(ms) {
    const d = new Date(ms - new Date().getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 16);
  }

  // Countdowns and waits move every second without re-drawing the cards.
  function tick() {
    reconcileOffers();
    const t = now();
    for (const card of document.querySelectorAll(".card")) {
      const waited = card.querySelector(".waited");
      const received = Number(card.dataset.received || 0);
      if (waited && received) waited.textContent = duration(t - received);
      if (card.classList.contains("offer")) {
        const left = Number(card.dataset.expires || 0) - t;
        const countdown = card.querySelector(".countdown");
        countdown.textContent = left > 0 ? `${duration(left)} left` : "expiring…";
        countdown.classList.toggle("urgent", left < 10);
      }
    }
    if (agent) {
      const since = seconds(agent.status_since);
      $("status-detail").textContent = since ? `for ${duration(t - since)}` : "";
    }
  }

  setInterval(tick, 1000);
  load();
})();
