// mysql-replicator console: polls the server's API every second and renders
// tasks (state, instances, progress, rows/s), alerts, and Cores with their
// groups. Buttons call POST /api/v1/tasks/{name}/pause|resume|switchover.
// Plain JavaScript, no build step, no dependencies.
"use strict";

const POLL_MS = 1000;
const RATE_WINDOW_MS = 5000;
const TOKEN_KEY = "replicator.token";

const $ = (id) => document.getElementById(id);

const state = {
  samples: new Map(), // task key -> [{t, events}] within RATE_WINDOW_MS
  data: null, // last answers
  pointerDownAt: 0, // a click is under way since then: do not replace the buttons
  pending: false, // a render waits for the click to finish
  toastTimer: null,
};

// ---- formatting ------------------------------------------------------------

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

// 950 -> "950 ms", 4200 -> "4.2 s", 185000 -> "3 m 5 s", 7500000 -> "2 h 5 m"
function duration(ms) {
  if (ms == null || !isFinite(ms)) return "–";
  ms = Math.max(0, ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} m`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function ago(ms) {
  return ms ? `${duration(Date.now() - ms)} ago` : "–";
}

// Local wall-clock time; the date too when it is not today.
function clock(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], { hour12: false });
  return d.toDateString() === new Date().toDateString()
    ? time
    : `${d.toLocaleDateString()} ${time}`;
}

function count(n) {
  return n == null ? "–" : Number(n).toLocaleString("en-US");
}

function lagClass(ms) {
  if (ms == null) return "muted";
  if (ms >= 300000) return "lag-bad";
  if (ms >= 60000) return "lag-warn";
  return "lag-ok";
}

// ---- API -------------------------------------------------------------------

function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

async function api(method, path) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let resp;
  try {
    resp = await fetch(path, { method, headers, cache: "no-store" });
  } catch (e) {
    const err = new Error(`the server does not answer (${e.message})`);
    err.status = 0;
    throw err;
  }
  let body = null;
  try {
    body = await resp.json();
  } catch (_) {
    // not JSON: keep null
  }
  if (!resp.ok) {
    const err = new Error((body && body.error) || `${method} ${path}: HTTP ${resp.status}`);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function taskKey(t) {
  return t.group ? `${t.group}/${t.name}` : t.name;
}

// rows/s of every task from the change of its events counter over the window
function updateRates(tasks, now) {
  const seen = new Set();
  for (const t of tasks) {
    const key = taskKey(t);
    seen.add(key);
    const events = t.progress ? t.progress.events : null;
    let list = state.samples.get(key) || [];
    if (events == null) {
      state.samples.delete(key);
      continue;
    }
    if (list.length && events < list[list.length - 1].events) list = []; // counter reset
    list.push({ t: now, events });
    while (list.length > 2 && now - list[1].t >= RATE_WINDOW_MS) list.shift();
    state.samples.set(key, list);
  }
  for (const key of [...state.samples.keys()]) if (!seen.has(key)) state.samples.delete(key);
}

function rate(t) {
  const list = state.samples.get(taskKey(t));
  if (!list || list.length < 2) return null;
  const first = list[0];
  const last = list[list.length - 1];
  const span = last.t - first.t;
  return span >= 900 ? ((last.events - first.events) * 1000) / span : null;
}

// ---- rendering -------------------------------------------------------------

function renderHealth(health, ok) {
  const el = $("health");
  if (!ok) {
    el.className = "pill bad";
    el.textContent = "server unreachable";
    return;
  }
  const zk = health ? health.zookeeper : "?";
  const connected = /connected/i.test(zk) && !/dis/i.test(zk);
  el.className = `pill ${connected ? "ok" : "bad"}`;
  el.textContent = `ZooKeeper ${zk}`;
}

function renderAlerts(alerts) {
  const firing = alerts.filter((a) => a.state === "firing");
  $("alert-count").textContent = firing.length
    ? `${firing.length} firing` + (alerts.length > firing.length ? `, ${alerts.length - firing.length} resolved` : "")
    : "";
  if (!alerts.length) {
    $("alerts").innerHTML = '<p class="none" id="no-alerts">No active alerts.</p>';
    return;
  }
  const rows = alerts.map((a) => {
    const resolved = a.state === "resolved";
    const subject = [a.task ? `task ${esc(a.task)}` : "", a.core ? `core ${esc(a.core)}` : ""]
      .filter(Boolean).join(", ");
    return `<tr class="alert ${resolved ? "resolved" : "firing"}" data-rule="${esc(a.rule)}"
        data-alert-state="${esc(a.state)}" data-alert-id="${esc(a.id)}">
      <td><span class="badge sev-${resolved ? "resolved" : esc(a.severity)}">${resolved ? "resolved" : esc(a.severity)}</span></td>
      <td class="rule">${esc(a.rule)}</td>
      <td class="nowrap">${subject || '<span class="muted">–</span>'}</td>
      <td>${esc(a.message)}</td>
      <td class="muted nowrap" title="${esc(clock(a.since_ms))}">${resolved ? "resolved" : "since"} ${esc(ago(a.since_ms))}</td>
    </tr>`;
  });
  $("alerts").innerHTML = `<table id="alert-table"><thead><tr><th>Severity</th><th>Rule</th><th>Subject</th>
    <th>Message</th><th>Since</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

// "retrying for 2 m 10 s (7 attempts): <last error>" of a streak of transient failures
function retryText(r) {
  const attempts = r.attempts === 1 ? "1 attempt" : `${r.attempts} attempts`;
  return `retrying for ${duration(Date.now() - r.since_ms)} (${attempts}): ${r.error}`;
}

function renderInstance(i) {
  const role = (i.state || "UNKNOWN").toUpperCase();
  const r = i.retrying;
  const details = [
    i.seq != null ? `#${i.seq}` : "",
    i.pid != null ? `pid ${i.pid}` : "",
    i.since_ms ? `since ${clock(i.since_ms)} (${duration(Date.now() - i.since_ms)})` : "",
  ].filter(Boolean).join(" · ");
  return `<div class="inst ${esc(role.toLowerCase())}${r ? " retrying" : ""}" data-host="${esc(i.host)}" data-state="${esc(role)}"
      data-id="${esc(i.id)}" data-since="${esc(i.since_ms ?? "")}"${r ? ` data-retrying-since="${esc(r.since_ms)}" data-attempts="${esc(r.attempts)}"` : ""}>
    <span class="dot"></span><span class="role">${esc(role)}</span>
    <b>${esc(i.host)}</b> <span class="sub">${esc(details)}</span>
    ${i.error ? `<span class="err">${esc(i.error)}</span>` : ""}
    ${r && !i.error ? `<span class="retry" title="since ${esc(clock(r.since_ms))}">${esc(retryText(r))}</span>` : ""}
  </div>`;
}

function renderTask(t) {
  const cfg = t.config;
  const include = cfg && cfg.source.include && cfg.source.include.length
    ? ` <span class="mono">${cfg.source.include.map(esc).join(" ")}</span>`
    : "";
  const where = cfg
    ? `${esc(cfg.source.host)}:${esc(cfg.source.port)}${include} → ${esc(cfg.sink.topic)}`
    : esc(t.config_error || "no config");
  const group = t.group ? `<span class="tag">group ${esc(t.group)}</span>` : '<span class="tag">hot</span>';
  const instances = t.instances.length
    ? t.instances.map(renderInstance).join("")
    : '<span class="muted">no instance</span>';
  const p = t.progress;
  const r = rate(t);
  const position = p
    ? `<span class="mono">${esc(p.position)}</span>${p.gtid ? `<div class="sub mono">${esc(p.gtid)}</div>` : ""}`
    : '<span class="muted">–</span>';
  const eventTime = p && p.event_ts_ms
    ? `${esc(clock(p.event_ts_ms))}<div class="${lagClass(p.lag_ms)}">lag ${esc(duration(p.lag_ms))}</div>`
    : '<span class="muted">–</span>';
  const events = p
    ? `${esc(count(p.events))}<div class="rate">${r == null ? "…" : esc(r.toFixed(r < 10 ? 1 : 0))} rows/s</div>`
    : '<span class="muted">–</span>';
  const snapshot = p && p.snapshot ? renderSnapshot(p.snapshot) : "";
  const paused = t.desired === "paused";
  const groupAttr = esc(t.group || "");
  const name = esc(t.name);
  return `<tr data-task="${name}" data-group="${groupAttr}" data-state="${esc(t.state)}">
    <td><span class="task-name">${name}</span>${group}<div class="sub">${where}</div>${snapshot}</td>
    <td class="nowrap"><span class="badge state-${esc(t.state)}">${esc(t.state)}</span>
      ${t.switchover ? `<div class="sub">switchovers: ${esc(t.switchover)}</div>` : ""}</td>
    <td>${instances}</td>
    <td class="nowrap">${position}</td>
    <td class="nowrap">${eventTime}</td>
    <td class="num nowrap events" data-events="${esc(p ? p.events : "")}" data-rate="${esc(r == null ? "" : r.toFixed(2))}">${events}</td>
    <td class="actions">
      <button data-action="${paused ? "resume" : "pause"}" data-task="${name}" data-group="${groupAttr}">${paused ? "Resume" : "Pause"}</button>
      <button data-action="switchover" data-task="${name}" data-group="${groupAttr}"
        title="the RUNNING instance hands over to the next one">Switchover</button>
    </td>
  </tr>`;
}

// snapshot progress: table being copied, rows of the estimate, rate, ETA
function renderSnapshot(sn) {
  if (!sn.table) {
    return `<div class="snapshot done sub">snapshot done: ${esc(count(sn.rows))} rows, ${esc(sn.tables)} tables</div>`;
  }
  const pct = sn.estimate > 0 ? Math.min(100, Math.floor((sn.rows * 100) / sn.estimate)) : 0;
  const rate = sn.rows_per_s == null ? "…" : `${esc(count(sn.rows_per_s))} rows/s`;
  const eta = sn.eta_s == null ? "" : `, ETA ${esc(duration(sn.eta_s * 1000))}`;
  return `<div class="snapshot" data-snapshot-table="${esc(sn.table)}" data-snapshot-rows="${esc(sn.rows)}">
    <div class="sub">snapshot: copying <span class="mono">${esc(sn.table)}</span>
      (${esc(sn.tables_done)} of ${esc(sn.tables)} tables done)</div>
    <progress class="bar" max="100" value="${esc(pct)}" title="${esc(pct)}%"></progress>
    <div class="sub">${esc(count(sn.rows))} of ~${esc(count(sn.estimate))} rows (${pct}%), ${rate}${eta}</div>
  </div>`;
}

function renderTasks(tasks) {
  const running = tasks.filter((t) => t.state === "running").length;
  $("task-count").textContent = tasks.length ? `${running} of ${tasks.length} running` : "";
  if (!tasks.length) {
    $("tasks").innerHTML = '<p class="muted">No task yet: create one with <code>replicatorctl task create FILE</code>.</p>';
    return;
  }
  $("tasks").innerHTML = `<table id="task-table"><thead><tr>
      <th>Task</th><th>State</th><th>Instances</th><th>Position</th><th>Event time</th>
      <th class="num">Events</th><th>Actions</th></tr></thead>
    <tbody>${tasks.map(renderTask).join("")}</tbody></table>`;
}

function renderCores(view, tasks) {
  const cores = view.cores || [];
  const groups = view.groups || [];
  $("core-count").textContent = cores.length ? `${cores.length} live` : "";
  const byKey = new Map(tasks.map((t) => [taskKey(t), t]));
  const maxLoad = Math.max(1, ...cores.map((c) => c.load));
  let html = "";
  if (groups.length) {
    const rows = groups.map((g) => {
      const taskCells = g.tasks.map((name) => {
        const t = byKey.get(`${g.name}/${name}`);
        const runner = t && t.instances.find((i) => i.state === "RUNNING");
        return `<span class="nowrap">${esc(name)} <span class="badge state-${esc(t ? t.state : "down")}">${esc(t ? t.state : "?")}</span>${runner ? ` <span class="sub">on ${esc(runner.host)}</span>` : ""}</span>`;
      });
      const coreCells = g.cores.map((h) => {
        const c = cores.find((x) => x.host === h);
        return `<span class="nowrap"><b>${esc(h)}</b> <span class="sub">load ${esc(c ? c.load : "?")}</span></span>`;
      });
      return `<tr data-group-row="${esc(g.name)}"><td class="task-name">${esc(g.name)}</td>
        <td>${taskCells.join(" &nbsp; ") || '<span class="muted">no task</span>'}</td>
        <td>${coreCells.join(" &nbsp; ") || '<span class="lag-bad">no core scans this group</span>'}</td></tr>`;
    });
    html += `<h3>Cold-standby groups</h3><table><thead><tr><th>Group</th><th>Tasks</th><th>Cores</th></tr></thead>
      <tbody>${rows.join("")}</tbody></table>`;
  }
  if (cores.length) {
    const rows = cores.map((c) => `<tr data-core="${esc(c.host)}">
      <td><b>${esc(c.host)}</b></td>
      <td>${c.groups.length ? c.groups.map(esc).join(", ") : '<span class="muted">–</span>'}</td>
      <td>${c.tasks.length ? c.tasks.map(esc).join(", ") : '<span class="muted">none</span>'}</td>
      <td class="nowrap"><meter min="0" max="${maxLoad}" value="${esc(c.load)}"></meter> ${esc(c.load)}</td>
      <td class="num">${esc(c.pid)}</td>
      <td>${esc(c.version)}</td>
      <td class="nowrap">${esc(duration(c.heartbeat_age_ms))} ago</td></tr>`);
    html += `<h3>Cores</h3><table><thead><tr><th>Host</th><th>Groups</th><th>Tasks</th><th>Load</th>
      <th class="num">PID</th><th>Version</th><th>Heartbeat</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
  } else {
    html += '<p class="muted">No live Core registered under <code>/cores</code>.</p>';
  }
  if (view.unreadable && view.unreadable.length) {
    html += `<p class="lag-warn">Unreadable core nodes: ${view.unreadable.map(esc).join(", ")}</p>`;
  }
  $("cores").innerHTML = html;
}

function render() {
  // wait for a click to finish, but not for a button released outside the window
  if (state.pointerDownAt && Date.now() - state.pointerDownAt < 1000) {
    state.pending = true;
    return;
  }
  state.pending = false;
  const d = state.data;
  if (!d) return;
  renderAlerts(d.alerts.alerts || []);
  renderTasks(d.tasks.tasks || []);
  renderCores(d.cores, d.tasks.tasks || []);
  $("updated").textContent = `updated ${clock(d.at)}`;
}

function banner(text) {
  const el = $("banner");
  el.hidden = !text;
  el.textContent = text || "";
}

function toast(text, bad) {
  const el = $("toast");
  el.textContent = text;
  el.className = `toast${bad ? " bad" : ""}`;
  el.hidden = false;
  clearTimeout(state.toastTimer);
  state.toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

// ---- polling and actions ---------------------------------------------------

async function refresh() {
  // /healthz needs no token: it tells whether the server and ZooKeeper are up
  fetch("healthz", { cache: "no-store" })
    .then((r) => r.json())
    .then((h) => renderHealth(h, true), () => renderHealth(null, false));
  const [tasks, alerts, cores] = await Promise.all([
    api("GET", "api/v1/tasks"),
    api("GET", "api/v1/alerts"),
    api("GET", "api/v1/cores"),
  ]);
  const at = Date.now();
  updateRates(tasks.tasks || [], at);
  state.data = { tasks, alerts, cores, at };
  banner(null);
  render();
}

async function poll() {
  try {
    await refresh();
  } catch (e) {
    if (e.status === 401) {
      banner(token()
        ? "The server refused the API token: enter the right one above."
        : "This server needs an API token: enter it above.");
    } else {
      banner(`Cannot refresh: ${e.message}`);
    }
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

async function act(button) {
  const { action, task, group } = button.dataset;
  const path = `api/v1/tasks/${encodeURIComponent(task)}/${action}` +
    (group ? `?group=${encodeURIComponent(group)}` : "");
  button.disabled = true;
  try {
    const r = await api("POST", path);
    toast(action === "switchover"
      ? `${task}: switchover #${r.switchover} requested`
      : `${task}: desired state is ${r.desired}`);
    await refresh();
  } catch (e) {
    toast(`${task}: ${action} failed: ${e.message}`, true);
  } finally {
    button.disabled = false;
  }
}

function init() {
  $("token").value = token();
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token").value.trim());
    toast("token saved in this browser");
    refresh().catch(() => {});
  });
  $("token-clear").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    toast("token forgotten");
  });
  $("tasks").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (button) act(button);
  });
  // a re-render between mousedown and mouseup would swallow the click
  document.addEventListener("mousedown", () => { state.pointerDownAt = Date.now(); });
  document.addEventListener("mouseup", () => {
    state.pointerDownAt = 0;
    if (state.pending) setTimeout(render, 50);
  });
  poll();
}

init();
