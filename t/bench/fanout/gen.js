#!/usr/bin/env node
// Fan-out load generator, the same for every system under test.
//
// Opens N WebSocket subscribers (split over --procs child processes, so
// one JavaScript thread is not the bottleneck), subscribes them, tells the
// runner it is ready ({"ready":...} on stdout) and waits for "go" on stdin
// (the runner measures RSS in between).  Then:
//   latency phase: --events events, one every --interval ms;
//   burst phase:   --burst events published back to back (--pub-conc in
//                  flight), deliveries/s = deliveries / (last delivery -
//                  first publish).
// Every event carries "fanout-ts=<ms>;" where <ms> is process.hrtime
// (CLOCK_MONOTONIC, the same clock in every process of the machine), taken
// just before the publish request is written; a subscriber's latency is
// its own hrtime at the message callback minus that value.
//
// --proto sio   Engine.IO v4 / Socket.IO v5 over a bare WebSocket (this
//               project's ticket_socketio and the socket.io 4.8 server):
//               open packet, 40{"token"}, 421["join_ticket",id] + ack,
//               pings "2" answered "3".
// --proto nchan nchan's websocket subscriber: subscribed once open.
// --pub ours|nchan|sio  how an event is published (see publish()).
// --client node|c  subscribers in Node children (default) or in wsgen.c
//               processes (--wsgen PATH), which take far more deliveries/s
//               than one JavaScript thread, so the servers are measured,
//               not the generator.
'use strict';
const http = require('http');
const { fork, spawn } = require('child_process');
const WebSocket = require('ws');

const now = () => Number(process.hrtime.bigint()) / 1e6;
const TS_RE = /fanout-ts=([\d.]+);/;

function parseArgs(argv) {
  const a = { procs: 2, events: 20, interval: 200, burst: 50, pubConc: 4,
              connConc: 200, timeout: 20000 };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase());
    const v = argv[i + 1];
    a[k] = /^\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  }
  return a;
}

// ------------------------------------------------------------------ child
function child(args) {
  const socks = [];
  let lat = [], delivered = 0, lastRecv = 0, closed = 0, failed = 0;
  let phase = 'idle';

  function onEvent(text) {
    const m = TS_RE.exec(text);
    if (!m) return;
    const t = now();
    if (phase === 'idle') return;
    lat.push(t - Number(m[1]));
    delivered++;
    lastRecv = t;
  }

  function openOne(ready) {
    let done = false;
    const finish = (ok) => { if (!done) { done = true; if (!ok) failed++; ready(ok); } };
    const ws = new WebSocket(args.wsUrl, { perMessageDeflate: false });
    ws.on('error', () => finish(false));
    ws.on('close', () => { if (done) closed++; finish(false); });
    if (args.proto === 'nchan') {
      ws.on('open', () => finish(true));
      ws.on('message', (d) => onEvent(d.toString()));
    } else {
      ws.on('message', (d) => {
        const s = d.toString();
        if (s === '2') { ws.send('3'); return; }
        if (s.startsWith('42')) { onEvent(s); return; }
        if (s[0] === '0') {
          ws.send('40' + JSON.stringify({ token: args.token || '' }));
        } else if (s.startsWith('40')) {
          ws.send('421' + JSON.stringify(['join_ticket', args.ticket]));
        } else if (s.startsWith('431')) {
          finish(/"ok"\s*:\s*true/.test(s));
        } else if (s.startsWith('44')) {
          finish(false);
        }
      });
    }
    socks.push(ws);
  }

  function openAll(n, cb) {
    let started = 0, finished = 0, ok = 0;
    const next = () => {
      while (started < n && started - finished < args.connConc) {
        started++;
        openOne((good) => {
          finished++;
          if (good) ok++;
          if (finished === n) cb(ok); else next();
        });
      }
    };
    if (n === 0) cb(0); else next();
  }

  process.on('message', (msg) => {
    if (msg.cmd === 'open') {
      openAll(msg.n, (ok) => process.send({ ev: 'opened', ok, failed }));
    } else if (msg.cmd === 'phase') {
      phase = msg.name; lat = []; delivered = 0; lastRecv = 0;
      process.send({ ev: 'phased' });
    } else if (msg.cmd === 'count') {
      process.send({ ev: 'count', delivered, lastRecv, closed });
    } else if (msg.cmd === 'collect') {
      process.send({ ev: 'collect', lat, delivered, lastRecv, closed });
      phase = 'idle';
    } else if (msg.cmd === 'exit') {
      for (const ws of socks) ws.terminate();
      setTimeout(() => process.exit(0), 100);
    }
  });
}

// ----------------------------------------------------------------- parent
function request(args, agent, path, body, headers) {
  return new Promise((resolve, reject) => {
    const u = new URL(args.httpBase + path);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search,
                               method: 'POST', agent,
                               headers: Object.assign({ 'Content-Length': Buffer.byteLength(body) },
                                                      headers) }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode < 300 ? resolve(res.statusCode)
                                                 : reject(new Error('publish HTTP ' + res.statusCode))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function publish(args, agent) {
  const text = 'fanout-ts=' + now().toFixed(3) + ';';
  if (args.pub === 'ours') {
    return request(args, agent, '/api/tickets/' + args.ticket + '/comments',
                   JSON.stringify({ text }),
                   { 'Content-Type': 'application/json', Authorization: 'Bearer ' + args.token });
  }
  if (args.pub === 'nchan') {
    return request(args, agent, '/pub', text, { 'Content-Type': 'text/plain' });
  }
  return request(args, agent, '/emit', text, { 'Content-Type': 'text/plain' });
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1));
  return sorted[i];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function parent(args) {
  const kids = [];
  const waiters = new Map();
  const ask = (kid, cmd, ev) => new Promise((resolve) => {
    waiters.set(kid.pid + ev, resolve);
    kid.send(cmd);
  });
  const all = (cmd, ev) => Promise.all(kids.map((k) => ask(k, cmd, ev)));
  const deliver = (k, m) => {
    const key = k.pid + m.ev;
    const w = waiters.get(key);
    if (w) { waiters.delete(key); w(m); }
  };
  for (let i = 0; i < args.procs; i++) {
    let k;
    if (args.client === 'c') {
      // wsgen.c: the same commands as text lines, the same answers as JSON lines
      const u = new URL(args.wsUrl);
      k = spawn(args.wsgen, ['--host', u.hostname, '--port', u.port,
                             '--path', u.pathname + u.search, '--proto', args.proto,
                             '--token', String(args.token), '--ticket', String(args.ticket),
                             '--conc', String(args.connConc)],
                { stdio: ['pipe', 'pipe', 'inherit'] });
      let buf = '';
      k.stdout.setEncoding('utf8');
      k.stdout.on('data', (d) => {
        buf += d;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line) deliver(k, JSON.parse(line));
        }
      });
      k.send = (cmd) => k.stdin.write(
        (cmd.cmd === 'open' ? 'open ' + cmd.n : cmd.cmd === 'phase' ? 'phase ' + cmd.name : cmd.cmd) + '\n');
    } else {
      k = fork(__filename, process.argv.slice(2).concat(['--child', '1']),
               { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      k.on('message', (m) => deliver(k, m));
    }
    kids.push(k);
  }
  const t0 = now();
  const share = kids.map((_, i) => Math.floor(args.n / args.procs) + (i < args.n % args.procs ? 1 : 0));
  const opened = await Promise.all(kids.map((k, i) => ask(k, { cmd: 'open', n: share[i] }, 'opened')));
  const ok = opened.reduce((s, m) => s + m.ok, 0);
  console.log(JSON.stringify({ ready: ok, failed: args.n - ok, connectSeconds: (now() - t0) / 1000 }));

  // wait for "go" from the runner (it measures RSS meanwhile)
  await new Promise((resolve) => {
    let buf = '';
    process.stdin.on('data', (d) => { buf += d; if (buf.includes('go')) resolve(); });
  });

  const agent = new http.Agent({ keepAlive: true, maxSockets: args.pubConc });
  const expectedPer = ok;

  async function waitDelivered(target) {
    const deadline = now() + args.timeout;
    let last = -1, lastChange = now();
    for (;;) {
      const c = await all({ cmd: 'count' }, 'count');
      const got = c.reduce((s, m) => s + m.delivered, 0);
      if (got >= target || now() > deadline) return;
      if (got !== last) { last = got; lastChange = now(); }
      else if (now() - lastChange > 3000) return;        // stalled
      await sleep(50);
    }
  }

  async function phase(name, events, spacing) {
    await all({ cmd: 'phase', name }, 'phased');
    // the runner reads the CPU time of every process at these marks
    console.log(JSON.stringify({ mark: name + '-start' }));
    const start = now();
    let pubErrors = 0, sent = 0;
    if (spacing > 0) {
      for (let i = 0; i < events; i++) {
        const tick = now();
        try { await publish(args, agent); sent++; } catch (e) { pubErrors++; }
        const left = spacing - (now() - tick);
        if (left > 0) await sleep(left);
      }
    } else {
      let next = 0;
      const worker = async () => {
        while (next < events) {
          next++;
          try { await publish(args, agent); sent++; } catch (e) { pubErrors++; }
        }
      };
      await Promise.all(Array.from({ length: args.pubConc }, worker));
    }
    const pubSeconds = (now() - start) / 1000;
    await waitDelivered(sent * expectedPer);
    console.log(JSON.stringify({ mark: name + '-end' }));
    const res = await all({ cmd: 'collect' }, 'collect');
    let lat = [];
    for (const m of res) lat = lat.concat(m.lat);
    lat.sort((a, b) => a - b);
    const delivered = lat.length;
    const lastRecv = Math.max(...res.map((m) => m.lastRecv));
    const span = delivered ? (lastRecv - start) / 1000 : 0;
    return {
      events: sent, pubErrors, expected: sent * expectedPer, delivered,
      closed: res.reduce((s, m) => s + m.closed, 0),
      p50: pct(lat, 50), p90: pct(lat, 90), p99: pct(lat, 99), max: lat[lat.length - 1] || null,
      pubSeconds, seconds: span, perSecond: span > 0 ? delivered / span : 0,
    };
  }

  const result = { n: args.n, connected: ok };
  result.latency = await phase('latency', args.events, args.interval);
  if (args.burst > 0) result.burst = await phase('burst', args.burst, 0);
  console.log(JSON.stringify({ result }));
  for (const k of kids) k.send({ cmd: 'exit' });
}

const args = parseArgs(process.argv);
if (args.child) child(args);
else {
  parent(args).then(() => {
    setTimeout(() => process.exit(0), 500);
  }, (e) => { console.error(e.stack || String(e)); process.exit(1); });
}
