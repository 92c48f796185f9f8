#!/usr/bin/env node
// Reference socket.io 4.8 server for the fan-out bench: websocket transport,
// `join_ticket` joins the room `ticket_<id>` (ack {ok:true}); POST /emit
// emits `comment_added {ticketId, comment: {text: <body>}}` to the room
// `ticket_bench`-style room of --ticket; GET /gc runs the GC when started
// with --expose-gc (before an RSS reading).  Usage: node sio_server.js PORT TICKET
'use strict';
const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2]);
const ticket = process.argv[3];
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/emit') {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      io.to('ticket_' + ticket).emit('comment_added',
        { ticketId: ticket, comment: { text: body } });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"ok":true}');
    });
    return;
  }
  if (req.url === '/gc') {
    if (global.gc) global.gc();
    res.end('ok');
    return;
  }
  if (req.url === '/health') { res.end('ok'); return; }
  if (!req.url.startsWith('/socket.io/')) { res.writeHead(404); res.end(); }
});
const io = new Server(server, { transports: ['websocket'], serveClient: false });
io.on('connection', (socket) => {
  socket.on('join_ticket', (id, ack) => {
    socket.join('ticket_' + id);
    if (typeof ack === 'function') ack({ ok: true });
  });
});
server.listen(port, '127.0.0.1');
