import { createHash } from 'node:crypto';

/*
 * The live dashboard: one self-contained page (inline CSS and JS, no external URL, no
 * build step). It reads GET /cluster, /messages, /jobs and /flags once, then follows
 * GET /cluster/events and GET /messages/events. Data is always rendered as text, never
 * as HTML. Stable hooks for tests: #node-name, #leader-mark, #member-count, #quorum, #term,
 * tr[data-member="<name>"][data-state="up|down|leave"], #events li[data-event-type],
 * #messages li[data-topic], #job-runs li[data-node], #flags tr[data-flag],
 * #room-status[data-joined="<room>"], #room-messages li[data-room][data-from].
 * The room panel talks Socket.IO (the client script socket.io serves at /socket.io/).
 */

const STYLE = `
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f7f8fa; --ok:#137333; --bad:#b42318; --warn:#b54708; --accent:#3451b2; }
* { box-sizing: border-box; }
[hidden] { display:none !important; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; flex-wrap:wrap; align-items:baseline; gap:.4rem 1.2rem; padding:.9rem 1.4rem; background:#fff; border-bottom:1px solid var(--line); }
header h1 { font-size:1.15rem; margin:0; }
.badge { display:inline-block; padding:.05rem .5rem; border-radius:999px; font-size:.78rem; font-weight:600; background:#eef1f8; color:var(--accent); }
.badge.leader { background:#fff4d6; color:#8a5a00; }
.badge.live { background:#e6f4ea; color:var(--ok); }
.badge.offline { background:#fde8e7; color:var(--bad); }
.meta { color:var(--muted); }
main { display:grid; grid-template-columns:repeat(auto-fit, minmax(420px, 1fr)); gap:1rem; padding:1rem 1.4rem 2rem; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:.8rem 1rem; min-width:0; }
section.wide { grid-column:1 / -1; }
h2 { font-size:.95rem; margin:0 0 .6rem; display:flex; gap:.5rem; align-items:baseline; }
h2 .meta { font-weight:400; font-size:.85rem; }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:.3rem .5rem; border-bottom:1px solid var(--line); white-space:nowrap; }
th { font-size:.78rem; text-transform:uppercase; letter-spacing:.03em; color:var(--muted); font-weight:600; }
td.name { font-family:ui-monospace, SFMono-Regular, Menlo, monospace; }
tr[data-state="down"] td, tr[data-state="leave"] td { text-decoration:line-through; color:var(--muted); }
tr[data-state="down"] td.state { color:var(--bad); text-decoration:none; }
tr[data-state="leave"] td.state { color:var(--warn); text-decoration:none; }
tr[data-state="up"] td.state { color:var(--ok); }
ul.log { list-style:none; margin:0; padding:0; max-height:18rem; overflow:auto; font-family:ui-monospace, SFMono-Regular, Menlo, monospace; font-size:.82rem; }
ul.log li { padding:.2rem 0; border-bottom:1px dashed var(--line); overflow-wrap:anywhere; }
ul.log time { color:var(--muted); margin-right:.5rem; }
li[data-event-type="join"] .kind { color:var(--ok); }
li[data-event-type="down"] .kind { color:var(--bad); }
li[data-event-type="leave"] .kind { color:var(--warn); }
.kind { font-weight:700; margin-right:.4rem; }
.empty { color:var(--muted); font-style:italic; }
form { display:grid; gap:.5rem; grid-template-columns:10rem 1fr auto; align-items:start; }
input, textarea, button { font:inherit; padding:.35rem .5rem; border:1px solid #cfd4dc; border-radius:6px; }
textarea { min-height:2.3rem; resize:vertical; font-family:ui-monospace, SFMono-Regular, Menlo, monospace; }
button { background:var(--accent); color:#fff; border-color:var(--accent); cursor:pointer; }
#publish-result, #flag-result { grid-column:1 / -1; color:var(--muted); font-size:.85rem; min-height:1.2em; }
#publish-result.error, #flag-result.error { color:var(--bad); }
#flag-form { grid-template-columns:1fr auto auto; align-items:center; margin-top:.6rem; }
#room-join-form, #room-send-form { grid-template-columns:1fr auto; margin-bottom:.5rem; }
#room-result { grid-column:1 / -1; color:var(--muted); font-size:.85rem; min-height:1.2em; }
#room-result.error { color:var(--bad); }
#toasts { position:fixed; right:1rem; bottom:1rem; display:flex; flex-direction:column; gap:.4rem; z-index:10; }
.toast { background:#1d2330; color:#fff; padding:.5rem .8rem; border-radius:6px; box-shadow:0 4px 14px rgba(0,0,0,.2); font-size:.85rem; max-width:28rem; }
.toast.down { background:var(--bad); } .toast.leave { background:var(--warn); } .toast.join { background:var(--ok); }
`;

const SCRIPT = `
'use strict';
const $ = (selector) => document.querySelector(selector);
const state = { selfName: '', leader: null, rows: new Map(), lastReason: new Map(), runsSeen: 0 };
const MAX_LOG = 100;
const GONE_ROW_MS = 30000;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value; else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? '')));
  return node;
}
function clock(iso) { return iso ? new Date(iso).toLocaleTimeString() : ''; }
function timeEl(iso) { return el('time', { datetime: iso, title: iso }, clock(iso)); }
function prepend(list, item) {
  list.querySelector('.empty')?.remove();
  list.prepend(item);
  while (list.children.length > MAX_LOG) list.lastElementChild.remove();
}
function toast(text, kind) {
  const node = el('div', { class: 'toast ' + kind, role: 'status' }, text);
  $('#toasts').append(node);
  setTimeout(() => node.remove(), 5000);
}
function payloadText(payload) { return typeof payload === 'string' ? payload : JSON.stringify(payload); }

async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(path + ': HTTP ' + response.status);
  return response.json();
}

/* Members: a snapshot replaces the "up" rows; members missing from it stay struck out for a while. */
function renderSnapshot(view) {
  state.selfName = view.self.name;
  state.leader = view.leader;
  document.title = view.self.name + ' · cluster';
  $('#node-name').textContent = view.self.name;
  $('#node-address').textContent = view.self.address || '(not listening)';
  $('#mode').textContent = view.mode + ' · strategy ' + view.strategy;
  $('#leader-mark').hidden = view.leader !== view.self.name;
  $('#leader-name').textContent = view.leader ?? 'none';
  $('#term').textContent = String(view.term ?? '');
  const quorum = view.quorum;
  if (quorum) {
    $('#quorum').textContent = quorum.required === null
      ? 'off'
      : quorum.reachable + ' of ' + quorum.required + (quorum.ok ? ' (held)' : ' (lost: no leader on this side)');
    $('#quorum').dataset.ok = String(quorum.ok);
  }
  $('#member-count').textContent = String(view.members.length);
  const body = $('#members tbody');
  const present = new Set();
  for (const member of view.members) {
    present.add(member.name);
    let row = state.rows.get(member.name);
    if (!row) {
      row = el('tr', { 'data-member': member.name });
      state.rows.set(member.name, row);
    }
    clearTimeout(row._removal);
    row.dataset.state = 'up';
    row.dataset.incarnation = member.incarnation;
    row.replaceChildren(
      el('td', { class: 'name' }, member.name),
      el('td', {}, member.address),
      el('td', {}, timeEl(member.joinedAt)),
      el('td', { class: 'leader' }, member.leader ? '★ leader' : ''),
      el('td', { class: 'self' }, member.self ? 'this node' : ''),
      el('td', { class: 'state' }, 'up'),
    );
    row.dataset.leader = String(member.leader);
    body.append(row);
  }
  for (const [name, row] of state.rows) {
    if (present.has(name) || row.dataset.state !== 'up') continue;
    markGone(name, state.lastReason.get(name) || { type: 'down', reason: 'gone' });
  }
}
function markGone(name, event) {
  const row = state.rows.get(name);
  if (!row) return;
  row.dataset.state = event.type;
  row.dataset.leader = 'false';
  row.querySelector('td.leader').textContent = '';
  row.querySelector('td.state').textContent = event.type + ' (' + event.reason + ')';
  clearTimeout(row._removal);
  row._removal = setTimeout(() => { row.remove(); state.rows.delete(name); }, GONE_ROW_MS);
}
function onMembershipEvent(event) {
  const item = el('li', { 'data-event-type': event.type, 'data-member': event.member },
    timeEl(event.at), el('span', { class: 'kind' }, event.type), event.member + ' ' + event.address + ' (' + event.reason + ')');
  prepend($('#events'), item);
  if (event.type !== 'join') {
    state.lastReason.set(event.member, event);
    markGone(event.member, event);
  } else {
    state.lastReason.delete(event.member);
  }
  toast(event.member + ' ' + event.type + (event.type === 'join' ? 'ed' : '') + ' (' + event.reason + ')', event.type);
}

/* Messages, job runs, flags */
function addMessage(message) {
  if (message.topic === 'leader-job') return addJobRun(message.payload);
  if (message.topic === 'feature_rollouts' && message.payload && message.payload.flag) upsertFlag(message.payload.flag);
  const item = el('li', { 'data-topic': message.topic, 'data-from': message.from },
    timeEl(message.receivedAt), el('span', { class: 'kind' }, message.topic), 'from ' + message.from + ': ', el('span', { class: 'payload' }, payloadText(message.payload)));
  prepend($('#messages'), item);
}
function addJobRun(run) {
  if (!run || typeof run.node !== 'string') return;
  state.runsSeen += 1;
  prepend($('#job-runs'), el('li', { 'data-node': run.node }, timeEl(run.at), el('span', { class: 'kind' }, run.job + ' #' + run.run), 'ran on ' + run.node + ' (' + run.members + ' members)'));
  const byNode = new Map();
  for (const li of $('#job-runs').querySelectorAll('li[data-node]')) byNode.set(li.dataset.node, (byNode.get(li.dataset.node) || 0) + 1);
  $('#job-summary').textContent = [...byNode].map(([node, count]) => node + ' × ' + count).join(', ') + ' (last ' + Math.min(state.runsSeen, MAX_LOG) + ' runs)';
}
function upsertFlag(flag) {
  if (typeof flag.name !== 'string') return;
  const body = $('#flags tbody');
  body.querySelector('.empty')?.closest('tr')?.remove();
  let row = body.querySelector('tr[data-flag="' + CSS.escape(flag.name) + '"]');
  if (row && row.dataset.updatedAt && row.dataset.updatedAt > flag.updatedAt) return;
  if (!row) { row = el('tr', { 'data-flag': flag.name }); body.append(row); }
  row.dataset.updatedAt = flag.updatedAt;
  row.dataset.enabled = String(flag.enabled);
  row.replaceChildren(el('td', { class: 'name' }, flag.name), el('td', {}, flag.enabled ? 'on' : 'off'), el('td', {}, flag.updatedBy), el('td', {}, timeEl(flag.updatedAt)));
}

/* Live streams; EventSource reconnects by itself, the badge shows the connection. */
function follow(path, handlers) {
  const source = new EventSource(path);
  source.onopen = () => { const badge = $('#connection'); badge.textContent = 'live'; badge.className = 'badge live'; };
  source.onerror = () => { const badge = $('#connection'); badge.textContent = 'reconnecting…'; badge.className = 'badge offline'; };
  for (const [type, handler] of Object.entries(handlers)) source.addEventListener(type, (event) => handler(JSON.parse(event.data)));
  return source;
}

$('#publish-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const result = $('#publish-result');
  const topic = $('#publish-topic').value.trim();
  const text = $('#publish-payload').value;
  let payload = text;
  try { payload = JSON.parse(text); } catch { /* not JSON: send the text */ }
  try {
    const response = await fetch('/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, payload }) });
    const body = await response.json();
    if (!response.ok) throw new Error([].concat(body.message).join('; '));
    result.className = '';
    result.textContent = 'delivered to ' + body.delivered.join(', ') + (body.failed.length ? '; failed: ' + body.failed.map((f) => f.node + ' (' + f.reason + ')').join(', ') : '');
  } catch (error) {
    result.className = 'error';
    result.textContent = String(error.message || error);
  }
});
$('#flag-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const result = $('#flag-result');
  const name = $('#flag-name').value.trim();
  try {
    const response = await fetch('/flags/' + encodeURIComponent(name), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ enabled: $('#flag-enabled').checked }) });
    const body = await response.json();
    if (!response.ok) throw new Error([].concat(body.message).join('; '));
    upsertFlag(body.flag);
    result.className = '';
    result.textContent = 'set ' + body.flag.name + ', invalidated on ' + body.published.delivered.length + ' node(s)';
  } catch (error) {
    result.className = 'error';
    result.textContent = String(error.message || error);
  }
});

/* Room panel: a Socket.IO connection to this node; the cluster adapter brings the room's messages from every node. */
const room = { socket: null, joined: null };
function addRoomMessage(message) {
  if (!message || typeof message.room !== 'string') return;
  prepend($('#room-messages'), el('li', { 'data-room': message.room, 'data-from': message.from },
    timeEl(new Date().toISOString()), el('span', { class: 'kind' }, message.room), 'from ' + message.from + ': ', el('span', { class: 'text' }, message.text)));
}
function roomResult(text, isError) { const node = $('#room-result'); node.className = isError ? 'error' : ''; node.textContent = text; }
async function joinRoom(name) {
  const ack = await room.socket.timeout(5000).emitWithAck('join', name);
  if (!ack.ok) throw new Error(ack.error);
  room.joined = ack.room;
  const status = $('#room-status');
  status.dataset.joined = ack.room;
  status.textContent = 'in "' + ack.room + '" on ' + ack.node;
  $('#room-send-form button').disabled = false;
}
function startRooms() {
  if (typeof io !== 'function') { $('#room-status').textContent = 'socket.io client not available'; return; }
  room.socket = io({ transports: ['websocket'] });
  room.socket.on('room-message', addRoomMessage);
  // After a reconnection the server has forgotten the room: join it again.
  room.socket.on('connect', () => { if (room.joined) joinRoom(room.joined).catch((error) => roomResult(String(error.message || error), true)); });
  room.socket.on('disconnect', () => { $('#room-status').textContent = 'disconnected, reconnecting…'; });
}
$('#room-join-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    if (room.joined) await room.socket.timeout(5000).emitWithAck('leave', room.joined);
    await joinRoom($('#room-name').value.trim());
    roomResult('joined', false);
  } catch (error) {
    roomResult(String(error.message || error), true);
  }
});
$('#room-send-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!room.joined) return roomResult('join a room first', true);
  try {
    const response = await fetch('/rooms/' + encodeURIComponent(room.joined) + '/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: $('#room-text').value }) });
    const body = await response.json();
    if (!response.ok) throw new Error([].concat(body.message).join('; '));
    roomResult('sent to "' + body.room + '" on every node', false);
    $('#room-text').value = '';
  } catch (error) {
    roomResult(String(error.message || error), true);
  }
});

(async () => {
  startRooms();
  try {
    renderSnapshot(await getJson('/cluster'));
    const [messages, runs, flags] = await Promise.all([getJson('/messages'), getJson('/jobs'), getJson('/flags')]);
    messages.sort((a, b) => a.receivedAt.localeCompare(b.receivedAt));
    for (const message of messages) if (message.topic !== 'leader-job') addMessage(message);
    for (const run of runs) addJobRun(run);
    for (const flag of flags) upsertFlag(flag);
  } catch (error) {
    toast('could not load the node state: ' + (error.message || error), 'down');
  }
  follow('/cluster/events', { members: renderSnapshot, join: onMembershipEvent, leave: onMembershipEvent, down: onMembershipEvent });
  follow('/messages/events', { message: addMessage });
})();
`;

const BODY = `
<header>
  <h1 id="node-name">…</h1>
  <span id="leader-mark" class="badge leader" hidden>★ leader</span>
  <span id="connection" class="badge">connecting…</span>
  <span class="meta">links on <span id="node-address"></span></span>
  <span class="meta" id="mode"></span>
  <span class="meta">leader: <strong id="leader-name">…</strong> · term <span id="term"></span></span>
  <span class="meta">quorum: <strong id="quorum">…</strong></span>
</header>
<main>
  <section class="wide" aria-labelledby="members-title">
    <h2 id="members-title">Members <span class="meta"><span id="member-count">0</span> up</span></h2>
    <table id="members">
      <thead><tr><th>name</th><th>address</th><th>joined</th><th>leader</th><th>self</th><th>state</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section aria-labelledby="events-title">
    <h2 id="events-title">Membership events <span class="meta">since this page opened</span></h2>
    <ul id="events" class="log"><li class="empty">none yet</li></ul>
  </section>
  <section aria-labelledby="jobs-title">
    <h2 id="jobs-title">Leader-only job <span class="meta" id="job-summary">no run yet</span></h2>
    <ul id="job-runs" class="log"><li class="empty">the leader runs "digest" every 2 s</li></ul>
  </section>
  <section aria-labelledby="messages-title">
    <h2 id="messages-title">Messages received <span class="meta">newest first</span></h2>
    <form id="publish-form">
      <input id="publish-topic" name="topic" placeholder="topic" value="greetings" required aria-label="topic">
      <textarea id="publish-payload" name="payload" placeholder="payload: JSON or text" aria-label="payload">hello</textarea>
      <button type="submit">Publish to all</button>
      <div id="publish-result" role="status"></div>
    </form>
    <ul id="messages" class="log"><li class="empty">none yet</li></ul>
  </section>
  <section aria-labelledby="flags-title">
    <h2 id="flags-title">Feature flags <span class="meta">this node's cache, invalidated on <code>feature_rollouts</code></span></h2>
    <table id="flags">
      <thead><tr><th>flag</th><th>value</th><th>set on</th><th>at</th></tr></thead>
      <tbody><tr><td colspan="4" class="empty">none set</td></tr></tbody>
    </table>
    <form id="flag-form">
      <input id="flag-name" placeholder="flag name, e.g. new_ui" required aria-label="flag name">
      <label><input id="flag-enabled" type="checkbox" checked> on</label>
      <button type="submit">Set everywhere</button>
      <div id="flag-result" role="status"></div>
    </form>
  </section>
  <section aria-labelledby="room-title">
    <h2 id="room-title">Room <span class="meta" id="room-status">not joined</span></h2>
    <form id="room-join-form">
      <input id="room-name" name="room" value="lobby" required maxlength="200" aria-label="room name">
      <button type="submit">Join</button>
    </form>
    <form id="room-send-form">
      <input id="room-text" name="text" placeholder="message to everyone in the room, on every node" required maxlength="10000" aria-label="room message">
      <button type="submit" disabled>Send</button>
      <div id="room-result" role="status"></div>
    </form>
    <ul id="room-messages" class="log"><li class="empty">no room message yet</li></ul>
  </section>
</main>
<div id="toasts" aria-live="polite"></div>
`;

/** The dashboard HTML, identical for every request. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cluster dashboard</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
${BODY}
<script src="/socket.io/socket.io.min.js"></script>
<script>${SCRIPT}</script>
</body>
</html>
`;

const sha256 = (text: string): string =>
  `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * Content-Security-Policy of the page: only its own inline script and style run, and it only
 * talks to the node that served it.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  // 'self': the Socket.IO client script, served by socket.io on this node.
  `script-src 'self' ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');
