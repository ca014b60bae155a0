// A terminal on one console: xterm.js over the websocket /ws/ID, as one
// more client of the console (its history first). Bytes only: output is
// written to xterm as bytes (a UTF-8 character cut across frames is put
// together by xterm's decoder), input goes out in binary frames.
import { Terminal } from '/assets/xterm.mjs';
import { FitAddon } from '/assets/addon-fit.mjs';

const id = decodeURIComponent(location.pathname.slice('/c/'.length));
document.getElementById('title').textContent = id;
document.title = id + ' - chardevd';
const stateEl = document.getElementById('state');

const term = new Terminal({ scrollback: 10000, cursorBlink: true, allowProposedApi: false });
const fit = new FitAddon();
term.loadAddon(fit);
term.open(document.getElementById('terminal'));
fit.fit();
addEventListener('resize', () => fit.fit());
term.focus();

const state = { connected: false, opens: 0, received: 0, writer: true, client: null, closeReason: '' };
// For tests and the curious: the terminal and the connection's state.
window.chardevd = { term, state };

function show() {
  let text = state.connected ? (state.writer ? 'connected' : 'read-only') : 'reconnecting';
  if (!state.connected && state.closeReason) text += ' (' + state.closeReason + ')';
  stateEl.textContent = text;
  stateEl.className = 'state ' + (state.connected ? (state.writer ? 'ok' : 'ro') : 'bad');
}

const enc = new TextEncoder();
let ws = null;
let backoff = 250;

function send(bytes) {
  if (ws && ws.readyState === WebSocket.OPEN && state.writer) ws.send(bytes);
}

term.onData((s) => send(enc.encode(s)));
term.onBinary((s) => send(Uint8Array.from(s, (c) => c.charCodeAt(0) & 255)));

// Why a connection could not open (a browser does not show a refused
// websocket's answer): the chardev is missing, or is not a console.
async function why() {
  try {
    const r = await fetch('/api/chardevs');
    if (!r.ok) return '';
    const c = (await r.json()).find((x) => x.id === id);
    if (!c) return 'no chardev ' + id;
    if (!c.console) return 'not a console: give it a console option (such as __org.chardevd_history=64K) or bridge it to one';
  } catch (e) { /* the daemon is away */ }
  return '';
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let opened = false;
  ws = new WebSocket(scheme + '//' + location.host + '/ws/' + encodeURIComponent(id), ['binary']);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    opened = true;
    // The console sends its history first: start from a clean screen.
    term.reset();
    backoff = 250;
    state.connected = true;
    state.opens++;
    state.closeReason = '';
    show();
  };
  ws.onmessage = (m) => {
    if (typeof m.data === 'string') {
      Object.assign(state, JSON.parse(m.data));
      show();
      return;
    }
    const bytes = new Uint8Array(m.data);
    state.received += bytes.length;
    term.write(bytes);
  };
  ws.onclose = async (e) => {
    state.connected = false;
    state.closeReason = e.reason || (opened ? '' : await why());
    show();
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 5000);
  };
}
connect();
show();
