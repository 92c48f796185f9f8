#!/usr/bin/env node
/*
 * End-to-end test of the nginx Socket.IO endpoint (ticket_socketio) with the
 * real, unmodified socket.io-client 4.8 (DESIGN.md section 6), the way the
 * web UI uses it: io(url, {transports: ['websocket'], auth: {token}}).
 *
 * Run by t/integration/test_socketio_e2e.py against a running stack:
 *
 *   SIO_URL=http://127.0.0.1:PORT ADMIN_TOKEN=... CREATOR_TOKEN=...
 *   STRANGER_TOKEN=... TICKET_ID=... [ADMIN_ID=... CREATOR_ID=...]
 *   [PING_CHECK_MS=2500] node e2e_socketio.test.js
 *
 * (or the same values as --sio-url=... --admin-token=... arguments).
 * Prints one "ok"/"not ok" line per check and exits 0 when all passed.
 */

'use strict';

const assert = require('node:assert/strict');
const { io } = require('socket.io-client');
const clientVersion = require('socket.io-client/package.json').version;

// --- configuration ---------------------------------------------------------

function config() {
  const cfg = {};
  for (const arg of process.argv.slice(2)) {
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (m) cfg[m[1].toUpperCase().replace(/-/g, '_')] = m[2];
  }
  const get = (name, required = true) => {
    const v = cfg[name] ?? process.env[name];
    if (required && !v) {
      console.error(`missing ${name} (environment or --${name.toLowerCase()
        .replace(/_/g, '-')}=...)`);
      process.exit(2);
    }
    return v;
  };
  return {
    url: get('SIO_URL').replace(/\/+$/, ''),
    adminToken: get('ADMIN_TOKEN'),
    creatorToken: get('CREATOR_TOKEN'),
    strangerToken: get('STRANGER_TOKEN'),
    ticketId: get('TICKET_ID'),
    adminId: get('ADMIN_ID', false),
    creatorId: get('CREATOR_ID', false),
    pingCheckMs: Number(get('PING_CHECK_MS', false) || 0),
  };
}

const DELIVERY_MS = 1000;      // an event reaches every room member within
const ROOM_EVENTS = ['comment_added', 'status_updated', 'ticket_updated'];

// --- helpers ---------------------------------------------------------------

const sockets = [];

/* A connected socket, or a rejection with the connect_error. */
function connect(url, token, label) {
  return new Promise((resolve, reject) => {
    const opts = {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,            // one WebSocket per socket (no multiplexing)
      timeout: 5000,
    };
    if (token !== undefined) opts.auth = { token };
    const socket = io(url, opts);
    socket.label = label;
    socket.received = [];        // [event name, payload]
    socket.onAny((event, ...args) => socket.received.push([event, ...args]));
    sockets.push(socket);
    const timer = setTimeout(() => {
      reject(new Error(`${label}: neither connect nor connect_error in 5 s`));
    }, 5000);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      socket.close();
      err.socket = socket;
      reject(err);
    });
  });
}

/* The payload of the next `event` on socket, within ms. */
function nextEvent(socket, event, ms, pred = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, handler);
      reject(new Error(`${socket.label}: no ${event} within ${ms} ms; got ` +
        JSON.stringify(socket.received).slice(0, 500)));
    }, ms);
    function handler(payload) {
      if (!pred(payload)) return;
      clearTimeout(timer);
      socket.off(event, handler);
      resolve(payload);
    }
    socket.on(event, handler);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function roomEvents(socket) {
  return socket.received.filter(([name]) => ROOM_EVENTS.includes(name));
}

async function api(cfg, method, path, token, body) {
  const res = await fetch(cfg.url + path, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json };
}

let failures = 0;
let count = 0;

async function check(name, fn) {
  count += 1;
  try {
    await fn();
    console.log(`ok ${count} - ${name}`);
  } catch (err) {
    failures += 1;
    console.log(`not ok ${count} - ${name}`);
    console.log(String(err && err.stack ? err.stack : err)
      .split('\n').map((l) => `  # ${l}`).join('\n'));
  }
}

// --- the test --------------------------------------------------------------

async function main() {
  const cfg = config();
  console.log(`# socket.io-client ${clientVersion} against ${cfg.url}`);
  const members = [];
  let stranger;

  await check('admin and creator connect, 2 sockets each, over websocket',
    async () => {
      const made = await Promise.all([
        connect(cfg.url, cfg.adminToken, 'admin#1'),
        connect(cfg.url, cfg.adminToken, 'admin#2'),
        connect(cfg.url, cfg.creatorToken, 'creator#1'),
        connect(cfg.url, cfg.creatorToken, 'creator#2'),
      ]);
      for (const s of made) {
        assert.equal(s.connected, true, s.label);
        assert.equal(typeof s.id, 'string', s.label);
        assert.equal(s.io.engine.transport.name, 'websocket', s.label);
        members.push(s);
      }
      // every socket is its own Engine.IO session
      assert.equal(new Set(made.map((s) => s.io.engine.id)).size, 4);
    });

  await check('members join the ticket room with an ack', async () => {
    assert.equal(members.length, 4, 'members did not connect');
    const acks = await Promise.all(members.map((s) =>
      s.timeout(3000).emitWithAck('join_ticket', cfg.ticketId)));
    for (const ack of acks) {
      assert.deepEqual(ack, { ok: true, room: 'joined' });
    }
  });

  await check('a stranger is refused the room (ack ok:false)', async () => {
    stranger = await connect(cfg.url, cfg.strangerToken, 'stranger');
    const ack = await stranger.timeout(3000).emitWithAck('join_ticket',
      cfg.ticketId);
    assert.equal(ack.ok, false, JSON.stringify(ack));
    assert.equal(ack.error, 'Ticket not found');
  });

  const text = `e2e comment ${Date.now()} \u2713 caf\u00e9`;

  await check(`both users' sockets get comment_added within ${DELIVERY_MS} ms`,
    async () => {
      assert.equal(members.length, 4, 'members did not connect');
      const waits = members.map((s) => nextEvent(s, 'comment_added',
        DELIVERY_MS + 500, (p) => p && p.comment && p.comment.text === text)
        .then((p) => ({ p, at: Date.now() })));
      // no unhandled rejection while the REST call runs
      waits.forEach((w) => w.catch(() => {}));
      const res = await api(cfg, 'POST',
        `/api/tickets/${cfg.ticketId}/comments`, cfg.adminToken, { text });
      const sent = Date.now();
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const got = await Promise.all(waits);
      const stored = res.body.comments.find((c) => c.text === text);
      assert.ok(stored, 'the comment is in the REST answer');
      for (const { p, at } of got) {
        assert.ok(at - sent <= DELIVERY_MS, `delivered ${at - sent} ms after`);
        assert.equal(p.ticketId, cfg.ticketId);
        assert.equal(p.comment.text, text);
        assert.equal(p.comment.role, 'admin');
        assert.deepEqual(p.comment, stored);
        assert.deepEqual(Object.keys(p.comment.author).sort(),
          ['_id', 'email', 'status', 'username']);
        if (cfg.adminId) assert.equal(p.comment.author._id, cfg.adminId);
      }
    });

  await check('status_updated reaches the room too', async () => {
    const waits = members.map((s) => nextEvent(s, 'status_updated',
      DELIVERY_MS + 500, (p) => p && p.status === 'In Progress'));
    waits.forEach((w) => w.catch(() => {}));
    const res = await api(cfg, 'PATCH', `/api/tickets/${cfg.ticketId}/status`,
      cfg.adminToken, { status: 'In Progress' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const p of await Promise.all(waits)) {
      assert.deepEqual(p, { ticketId: cfg.ticketId, status: 'In Progress' });
    }
  });

  await check('the stranger received no room event', async () => {
    assert.ok(stranger, 'stranger did not connect');
    await sleep(300);
    assert.deepEqual(roomEvents(stranger), []);
    assert.equal(stranger.connected, true);
  });

  await check('each member got the comment exactly once', async () => {
    for (const s of members) {
      const n = s.received.filter(([name, p]) => name === 'comment_added'
        && p && p.comment && p.comment.text === text).length;
      assert.equal(n, 1, `${s.label} got it ${n} times`);
    }
  });

  await check('a bad token gets connect_error "Invalid token"', async () => {
    await assert.rejects(connect(cfg.url, 'not.a.token', 'bad-token'),
      (err) => {
        assert.equal(err.message, 'Invalid token');
        assert.equal(err.socket.connected, false);
        return true;
      });
    // a well-formed token signed with another key too
    const [h, p] = cfg.creatorToken.split('.');
    await assert.rejects(connect(cfg.url, `${h}.${p}.AAAA`, 'forged'),
      { message: 'Invalid token' });
  });

  await check('no token gets connect_error "Access Denied. No token found."',
    async () => {
      await assert.rejects(connect(cfg.url, undefined, 'no-token'),
        { message: 'Access Denied. No token found.' });
    });

  await check('leave_ticket acks and stops delivery', async () => {
    const leaver = members[3];
    const ack = await leaver.timeout(3000).emitWithAck('leave_ticket',
      cfg.ticketId);
    assert.deepEqual(ack, { ok: true });
    const before = roomEvents(leaver).length;
    const wait = nextEvent(members[0], 'comment_added', DELIVERY_MS + 500,
      (p) => p && p.comment && p.comment.text === 'after leave');
    wait.catch(() => {});
    const res = await api(cfg, 'POST',
      `/api/tickets/${cfg.ticketId}/comments`, cfg.adminToken,
      { text: 'after leave' });
    assert.equal(res.status, 200);
    await wait;
    await sleep(300);
    assert.equal(roomEvents(leaver).length, before);
  });

  if (cfg.pingCheckMs > 0) {
    await check(`sockets stay connected across server pings ` +
      `(${cfg.pingCheckMs} ms)`, async () => {
      const drops = [];
      for (const s of members) {
        s.on('disconnect', (reason) => drops.push(`${s.label}: ${reason}`));
      }
      await sleep(cfg.pingCheckMs);
      assert.deepEqual(drops, []);
      for (const s of members) assert.equal(s.connected, true, s.label);
      const ack = await members[0].timeout(3000).emitWithAck('join_ticket',
        cfg.ticketId);
      assert.deepEqual(ack, { ok: true, room: 'joined' });
    });
  }

  await check('client disconnect is clean', async () => {
    const waits = members.map((s) => new Promise((resolve) => {
      s.once('disconnect', (reason) => resolve(reason));
    }));
    members.forEach((s) => s.disconnect());
    for (const reason of await Promise.all(waits)) {
      assert.equal(reason, 'io client disconnect');
    }
  });

  for (const s of sockets) s.close();
  console.log(`1..${count}`);
  console.log(failures ? `# ${failures} of ${count} failed`
    : `# all ${count} passed`);
  return failures ? 1 : 0;
}

const overall = setTimeout(() => {
  console.log('not ok - the whole test took more than 20 s');
  process.exit(1);
}, 20000);

main().then((code) => {
  clearTimeout(overall);
  process.exit(code);
}, (err) => {
  console.log(`not ok - ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
