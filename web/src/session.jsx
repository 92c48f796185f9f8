// The signed-in session (user + token, kept in localStorage) and the one
// Socket.IO connection that goes with it.
//
// The socket: same origin, `transports: ['websocket']`, `auth: {token}`.
// Rooms a page asked for are remembered and joined again on every
// (re)connect, so live updates resume after a network blip or a server
// restart.  `connection` is the truthful state of that socket; pages refetch
// what they show when it comes back, to catch events sent while it was away.

import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState } from 'react';
import { io } from 'socket.io-client';
import { api, setToken, setUnauthorizedHandler } from './api.js';

const STORAGE_KEY = 'ticket-assistant.session';
const SessionContext = createContext(null);

function loadSession() {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw);
    if (s && typeof s.token === 'string' && s.user && s.user._id) return s;
  } catch {
    /* a corrupt entry is no session */
  }
  return null;
}

export function SessionProvider({ children }) {
  const [session, setSession] = useState(() => {
    const s = loadSession();
    if (s) setToken(s.token);
    return s;
  });
  const [notice, setNotice] = useState(null); // why the last session ended
  const [connection, setConnection] = useState({ state: 'offline', error: null });
  const [presence, setPresence] = useState({}); // userId -> {status, lastSeen}
  const [socket, setSocket] = useState(null);
  const rooms = useRef(new Map()); // ticketId -> number of pages holding it

  const save = useCallback((s) => {
    setToken(s ? s.token : null);
    if (s) localStorage.setItem(STORAGE_KEY, JSON.stringify(s));
    else localStorage.removeItem(STORAGE_KEY);
    setSession(s);
  }, []);

  const signIn = useCallback((user, token) => {
    setNotice(null);
    save({ user, token });
  }, [save]);

  const updateUser = useCallback((patch) => {
    setSession((s) => {
      if (!s) return s;
      const next = { ...s, user: { ...s.user, ...patch } };
      localStorage.setItem(STORAGE_KEY, JSON.stringify(next));
      return next;
    });
  }, []);

  /* Drop the session here without asking the server (it ended there). */
  const forget = useCallback(() => save(null), [save]);

  const signOut = useCallback(async () => {
    try {
      await api('/auth/logout', { method: 'POST' });
    } catch {
      /* the token is dropped here whatever the server says */
    }
    save(null);
  }, [save]);

  useEffect(() => {
    setUnauthorizedHandler((message) => {
      setNotice(`Your session has ended (${message}). Please log in again.`);
      save(null);
    });
    return () => setUnauthorizedHandler(null);
  }, [save]);

  // other tabs logging in or out
  useEffect(() => {
    const onStorage = (e) => {
      if (e.key !== STORAGE_KEY) return;
      const s = loadSession();
      setToken(s ? s.token : null);
      setSession(s);
    };
    window.addEventListener('storage', onStorage);
    return () => window.removeEventListener('storage', onStorage);
  }, []);

  const token = session ? session.token : null;
  useEffect(() => {
    if (!token) {
      setConnection({ state: 'offline', error: null });
      setSocket(null);
      return undefined;
    }
    const s = io({
      path: '/socket.io/',
      transports: ['websocket'],
      auth: { token },
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    let connects = 0;
    setConnection({ state: 'connecting', error: null, reconnects: 0 });
    s.on('connect', () => {
      connects += 1;
      setConnection({ state: 'connected', error: null, reconnects: connects - 1 });
      for (const id of rooms.current.keys()) s.emit('join_ticket', id);
    });
    s.on('disconnect', (reason) => {
      // "io client disconnect" is ours (logout); anything else reconnects
      setConnection((c) => ({
        ...c,
        state: reason === 'io client disconnect' ? 'offline' : 'reconnecting',
        error: null,
      }));
    });
    s.on('connect_error', (err) => {
      const message = err && err.message ? err.message : 'connection failed';
      setConnection((c) => ({ ...c, state: s.active ? 'reconnecting' : 'error', error: message }));
    });
    s.io.on('reconnect_attempt', () => {
      setConnection((c) => (c.state === 'connected' ? c : { ...c, state: 'reconnecting' }));
    });
    s.on('user_status_changed', (ev) => {
      if (!ev || !ev.userId) return;
      setPresence((p) => ({ ...p, [ev.userId]: { status: ev.status, lastSeen: ev.lastSeen } }));
    });
    setSocket(s);
    if (typeof window !== 'undefined') window.__ticketSocket = s; // for the browser tests
    return () => {
      s.removeAllListeners();
      s.io.removeAllListeners();
      s.disconnect();
    };
  }, [token]);

  /* Join a ticket's room for as long as the caller holds it; returns the
     function that leaves it.  The join is repeated after reconnects. */
  const holdRoom = useCallback((ticketId) => {
    const m = rooms.current;
    m.set(ticketId, (m.get(ticketId) || 0) + 1);
    if (socket && socket.connected && m.get(ticketId) === 1) socket.emit('join_ticket', ticketId);
    return () => {
      const n = (m.get(ticketId) || 1) - 1;
      if (n > 0) {
        m.set(ticketId, n);
        return;
      }
      m.delete(ticketId);
      if (socket && socket.connected) socket.emit('leave_ticket', ticketId);
    };
  }, [socket]);

  const value = useMemo(() => ({
    user: session ? session.user : null,
    token,
    notice,
    setNotice,
    signIn,
    signOut,
    forget,
    updateUser,
    socket,
    connection,
    presence,
    holdRoom,
  }), [session, token, notice, signIn, signOut, forget, updateUser, socket, connection, presence, holdRoom]);

  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession() {
  return useContext(SessionContext);
}

/* Call fn after every reconnect of the socket while the component is
   mounted: events sent while it was away are caught by refetching. */
export function useReconnect(fn) {
  const { connection } = useSession();
  const ref = useRef(fn);
  ref.current = fn;
  const n = connection.reconnects || 0;
  const seen = useRef(n);
  useEffect(() => {
    if (connection.state === 'connected' && n > seen.current) {
      seen.current = n;
      ref.current();
    }
  }, [connection.state, n]);
}

/* Subscribe to a socket event for the life of the component. */
export function useSocketEvent(event, handler) {
  const { socket } = useSession();
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => {
    if (!socket) return undefined;
    const fn = (...args) => ref.current(...args);
    socket.on(event, fn);
    return () => socket.off(event, fn);
  }, [socket, event]);
}

/* The live presence of a person shown on a page: the latest
   user_status_changed for them, else what the API said. */
export function usePresence(person) {
  const { presence } = useSession();
  if (!person) return null;
  const live = presence[person._id];
  return live ? live.status : person.status;
}
