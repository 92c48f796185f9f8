// The frame around every signed-in page: navigation by role, the presence
// menu, the live-connection indicator and logout.

import { useEffect, useRef, useState } from 'react';
import { Link, NavLink, Outlet, useLocation, useNavigate } from 'react-router-dom';
import { api, PRESENCE } from '../api.js';
import { usePresence, useSession } from '../session.jsx';
import { Logo, PresenceDot, RoleBadge } from './Bits.jsx';

function navItems(user) {
  const items = [{ to: '/', label: 'Tickets', end: true }];
  if (user.role === 'user') items.push({ to: '/apply', label: 'Become a moderator' });
  if (user.role !== 'user') items.push({ to: '/canned', label: 'Canned responses' });
  if (user.role === 'admin') {
    items.push({ to: '/admin/users', label: 'Users' });
    items.push({ to: '/admin/requests', label: 'Moderator requests' });
    items.push({ to: '/admin/analytics', label: 'Analytics' });
  }
  return items;
}

const CONN = {
  connected: { label: 'Live', cls: 'badge-success', hint: 'Real-time updates are on' },
  connecting: { label: 'Connecting…', cls: 'badge-warning', hint: 'Opening the real-time connection' },
  reconnecting: { label: 'Reconnecting…', cls: 'badge-warning', hint: 'Real-time connection lost; retrying' },
  error: { label: 'Offline', cls: 'badge-error', hint: 'Real-time connection refused' },
  offline: { label: 'Offline', cls: 'badge-error', hint: 'No real-time connection' },
};

export function ConnectionIndicator() {
  const { connection } = useSession();
  const c = CONN[connection.state] || CONN.offline;
  const title = connection.error ? `${c.hint}: ${connection.error}` : c.hint;
  return (
    <span
      className={`badge badge-sm gap-1 ${c.cls}`}
      role="status"
      aria-live="polite"
      title={title}
      data-testid="connection"
      data-state={connection.state}
    >
      <span className="sr-only">Connection: </span>{c.label}
    </span>
  );
}

function PresenceMenu() {
  const { user, updateUser } = useSession();
  const status = usePresence(user);
  const [error, setError] = useState(null);
  const current = PRESENCE.find((p) => p.value === status) || PRESENCE[2];

  async function choose(value) {
    setError(null);
    try {
      const r = await api('/auth/status', { method: 'PATCH', body: { status: value } });
      updateUser({ status: r.status || value });
      document.activeElement?.blur();
    } catch (e) {
      setError(e.message);
    }
  }

  return (
    <div className="dropdown dropdown-end">
      <button type="button" tabIndex={0} className="btn btn-ghost btn-sm gap-2" aria-haspopup="menu" aria-label={`Presence: ${current.label}. Change presence`} data-testid="presence-button">
        <PresenceDot status={status} />
        <span className="hidden sm:inline">{user.username}</span>
        <RoleBadge role={user.role} />
      </button>
      <ul tabIndex={0} role="menu" className="dropdown-content menu z-30 mt-2 w-60 rounded-box bg-base-100 p-2 shadow-lg border border-base-300">
        <li className="menu-title">Signed in as {user.email}</li>
        {PRESENCE.map((p) => (
          <li key={p.value} role="none">
            <button type="button" role="menuitemradio" aria-checked={p.value === status} onClick={() => choose(p.value)} className={p.value === status ? 'menu-active' : ''}>
              <PresenceDot status={p.value === 'offline' ? 'offline' : p.value} /> {p.label}
            </button>
          </li>
        ))}
        {error && <li className="text-error text-xs px-3 py-1" role="alert">{error}</li>}
        <li role="none"><Link role="menuitem" to="/account" onClick={() => document.activeElement?.blur()}>Change password</Link></li>
      </ul>
    </div>
  );
}

export default function Layout() {
  const { user, signOut } = useSession();
  const navigate = useNavigate();
  const items = navItems(user);
  const location = useLocation();
  const mainRef = useRef(null);
  const firstRender = useRef(true);
  // after a navigation, keyboard and screen-reader users start at the content
  useEffect(() => {
    if (firstRender.current) { firstRender.current = false; return; }
    mainRef.current?.focus({ preventScroll: false });
  }, [location.pathname]);

  async function logout() {
    await signOut();
    navigate('/login', { replace: true });
  }

  const links = items.map((it) => (
    <li key={it.to}>
      <NavLink to={it.to} end={it.end} className={({ isActive }) => (isActive ? 'menu-active' : '')}>
        {it.label}
      </NavLink>
    </li>
  ));

  return (
    <div className="min-h-screen bg-base-200">
      <a href="#main" className="skip-link btn btn-sm btn-primary">Skip to content</a>
      <header className="navbar sticky top-0 z-20 bg-base-100 border-b border-base-300 px-2 sm:px-4 gap-2">
        <div className="navbar-start gap-1 w-auto shrink-0">
          <div className="dropdown lg:hidden">
            <button type="button" tabIndex={0} className="btn btn-ghost btn-sm" aria-label="Open navigation menu">
              <svg xmlns="http://www.w3.org/2000/svg" className="h-5 w-5" fill="none" viewBox="0 0 24 24" stroke="currentColor" aria-hidden="true"><path strokeLinecap="round" strokeLinejoin="round" strokeWidth="2" d="M4 6h16M4 12h16M4 18h16" /></svg>
            </button>
            <ul tabIndex={0} className="menu dropdown-content z-30 mt-2 w-56 rounded-box bg-base-100 p-2 shadow-lg border border-base-300">{links}</ul>
          </div>
          <Link to="/" className="btn btn-ghost btn-sm text-lg font-bold normal-case px-1 sm:px-2">
            <Logo /> <span className="hidden sm:inline">Ticket Assistant</span><span className="sr-only sm:hidden">Ticket Assistant</span>
          </Link>
        </div>
        <nav className="navbar-center hidden lg:flex" aria-label="Main">
          <ul className="menu menu-horizontal menu-sm px-1 gap-1">{links}</ul>
        </nav>
        <div className="navbar-end gap-1 sm:gap-2 grow w-auto min-w-0">
          <ConnectionIndicator />
          <PresenceMenu />
          <button type="button" className="btn btn-outline btn-sm" onClick={logout}>Logout</button>
        </div>
      </header>
      <main id="main" ref={mainRef} tabIndex={-1} className="mx-auto max-w-6xl p-3 sm:p-6 focus:outline-none">
        <Outlet />
      </main>
    </div>
  );
}
