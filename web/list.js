// The chardev list, kept current by the server's event stream (/events).
const body = document.querySelector('#chardevs tbody');
const conn = document.getElementById('conn');
window.chardevd = { rows: [], updates: 0 };

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

function show(rows) {
  window.chardevd.rows = rows;
  window.chardevd.updates++;
  body.replaceChildren(...rows.map((c) => {
    const tr = document.createElement('tr');
    tr.dataset.id = c.id;
    tr.append(cell(c.id), cell(c.kind), cell(c.filename), cell(c.open ? 'open' : 'closed'),
      cell(c.console ? String(c.clients) : '-'));
    const td = document.createElement('td');
    if (c.console) {
      const a = document.createElement('a');
      a.href = '/c/' + encodeURIComponent(c.id);
      a.textContent = 'terminal';
      td.append(a);
    } else {
      td.textContent = 'not a console';
    }
    tr.append(td);
    return tr;
  }));
  document.getElementById('empty').hidden = rows.length > 0;
}

const events = new EventSource('/events');
events.onopen = () => { conn.textContent = 'live'; conn.className = 'state ok'; };
events.onerror = () => { conn.textContent = 'reconnecting'; conn.className = 'state bad'; };
events.onmessage = (m) => show(JSON.parse(m.data));
