// hbd demo page: save/read a name in the Redis-backed session and draw which
// node answers each poll, so a failover is visible.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const result = $("result");

  function show(kind, parts) {
    result.className = "result " + kind;
    result.replaceChildren(...parts.map((p) => {
      if (typeof p === "string") return document.createTextNode(p);
      const b = document.createElement("span");
      b.className = "node";
      b.textContent = p.node;
      return b;
    }));
  }

  // call fetches a JSON endpoint and returns {status, body, node}; network
  // failures come back as status 0.
  async function call(method, url, payload) {
    const opts = { method, cache: "no-store", headers: {} };
    if (payload !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(payload);
    }
    try {
      const res = await fetch(url, opts);
      let body = {};
      try { body = await res.json(); } catch (_) { /* not JSON */ }
      return { status: res.status, body, node: res.headers.get("X-Served-By") || body.node || "?" };
    } catch (e) {
      return { status: 0, body: { message: "no answer (" + e.message + ")" }, node: "?" };
    }
  }

  function showError(r) {
    const msg = (r.body && (r.body.message || r.body.error)) || "HTTP " + r.status;
    const parts = ["Error" + (r.status ? " " + r.status : "") + ": " + msg];
    if (r.node && r.node !== "?") parts.push(" — served by ", { node: r.node });
    show("err", parts);
  }

  async function busy(fn) {
    $("save").disabled = $("read").disabled = true;
    try { await fn(); } finally { $("save").disabled = $("read").disabled = false; }
  }

  $("save-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("name").value.trim();
    if (name === "") {
      show("err", ["Please type a name first."]);
      $("name").focus();
      return;
    }
    busy(async () => {
      const r = await call("POST", "/api/session", { name });
      if (r.status === 200) show("ok", ["Saved " + r.body.name + " — served by ", { node: r.node }]);
      else showError(r);
    });
  });

  $("read").addEventListener("click", () => busy(async () => {
    const r = await call("GET", "/api/session");
    if (r.status === 200) {
      const parts = ["Hello, " + r.body.name + " — served by ", { node: r.node }];
      if (r.body.saved_by && r.body.saved_by !== r.node) parts.push(" (saved on " + r.body.saved_by + ")");
      show("ok", parts);
    } else if (r.status === 404) {
      show("", ["The session is empty — save a name first. (served by ", { node: r.node }, ")"]);
    } else {
      showError(r);
    }
  }));

  // The strip: one cell per poll, coloured by node; hatched grey = no answer.
  const strip = $("strip"), legend = $("legend");
  const maxCells = 72, colours = new Map();
  const palette = ["#2f6fed", "#e8710a", "#1b9e77", "#d62f7a", "#7b57c8", "#8c6d1f"];

  function colourOf(node) {
    if (!colours.has(node)) {
      colours.set(node, palette[colours.size % palette.length]);
      const item = document.createElement("span");
      const sw = document.createElement("span");
      sw.className = "sw";
      sw.style.background = colours.get(node);
      item.append(sw, node);
      legend.append(item);
    }
    return colours.get(node);
  }

  function addCell(node, text) {
    const c = document.createElement("div");
    c.className = "cell" + (node ? "" : " fail");
    if (node) c.style.background = colourOf(node);
    c.title = new Date().toLocaleTimeString() + " " + text;
    strip.append(c);
    while (strip.childElementCount > maxCells) strip.firstElementChild.remove();
  }

  async function poll() {
    const started = performance.now();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 1500);
    try {
      const res = await fetch("/api/whoami", { cache: "no-store", signal: ctl.signal });
      const body = await res.json();
      addCell(body.node, body.node + " " + body.version + (body.draining ? " (draining)" : ""));
      $("page-node").textContent = body.node + " (version " + body.version + ")";
    } catch (e) {
      addCell("", "no answer");
    } finally {
      clearTimeout(timer);
      setTimeout(poll, Math.max(0, 500 - (performance.now() - started)));
    }
  }
  poll();
})();
