// Shared by the desk and the wallboard. Customer content is untrusted: it is
// only ever put on the page as text (textContent), never as HTML.
"use strict";

const Omni = (() => {
  // Build an element; `text` becomes its textContent (never parsed as HTML).
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("data-")) node.setAttribute(key, value);
      else node[key] = value;
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // "CHANNEL_POSTAL_MAIL" -> "postal mail"
  function enumLabel(value, prefix) {
    if (!value) return "";
    return String(value).replace(prefix, "").toLowerCase().replace(/_/g, " ");
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
    const h = Math.floor(m / 60);
    return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  }

  function seconds(timestamp) {
    return timestamp ? Date.parse(timestamp) / 1000 : 0;
  }

  function requestId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now()}-${Math.random().toString(16).slice(2)}`;
  }

  // Only web links become links: a "javascript:" URI from a channel stays text.
  function safeUrl(uri) {
    try {
      const url = new URL(uri, window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  async function api(method, path, token, body) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const error = new Error(describeError(response.status, data));
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function describeError(status, data) {
    const detail = data && data.detail;
    if (Array.isArray(detail)) {
      // FastAPI validation errors: name the field.
      return detail.map((d) => `${(d.loc || []).slice(1).join(".") || "request"}: ${d.msg}`).join("; ");
    }
    return detail ? String(detail) : `HTTP ${status}`;
  }

  // Server-sent events over fetch (so the token goes in a header, not the URL).
  // Reconnects with a growing pause until stopped; `onState` hears
  // "live", "reconnecting" or "denied" (401/403: a new token is needed).
  function stream(path, token, onEvent, onState) {
    let stopped = false;
    let controller = null;
    let pause = 500;
    (async () => {
      while (!stopped) {
        controller = new AbortController();
        try {
          const response = await fetch(path, {
            headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
            signal: controller.signal,
          });
          if (response.status === 401 || response.status === 403) {
            onState("denied", response.status);
            return;
          }
          if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          let buffer = "";
          let first = true;
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += decoder.decode(value, { stream: true });
            let end;
            while ((end = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              let name = "message";
              const data = [];
              for (const line of block.split("\n")) {
                if (line.startsWith("event:")) name = line.slice(6).trim();
                else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
              }
              if (!data.length) continue;
              if (first) {
                first = false;
                pause = 500;
                onState("live");
              }
              onEvent(name, JSON.parse(data.join("\n")));
            }
          }
        } catch (e) {
          if (stopped) return;
        }
        if (stopped) return;
        onState("reconnecting");
        await new Promise((resolve) => setTimeout(resolve, pause));
        pause = Math.min(pause * 2, 5000);
      }
    })();
    return {
      stop() {
        stopped = true;
        if (controller) controller.abort();
      },
    };
  }

  function showConnection(state) {
    const node = document.getElementById("connection");
    if (!node) return;
    node.dataset.state = state;
    node.textContent = { live: "live", reconnecting: "reconnecting…", denied: "signed out", connecting: "connecting" }[state] || state;
  }

  return { el, clear, enumLabel, duration, seconds, requestId, safeUrl, api, stream, showConnection };
})();
