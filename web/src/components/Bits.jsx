// Small presentational pieces shared by the pages.

import { useEffect, useState } from 'react';
import { usePresence } from '../session.jsx';

const PRESENCE_LABEL = { online: 'Online', dnd: 'Do not disturb', offline: 'Offline' };
const PRESENCE_CLASS = { online: 'bg-success', dnd: 'bg-error', offline: 'bg-base-300 border border-base-content/40' };

export function PresenceDot({ status, className = '' }) {
  const s = PRESENCE_LABEL[status] ? status : 'offline';
  return (
    <span
      className={`inline-block h-2.5 w-2.5 shrink-0 rounded-full ${PRESENCE_CLASS[s]} ${className}`}
      role="img"
      aria-label={PRESENCE_LABEL[s]}
      title={PRESENCE_LABEL[s]}
      data-presence={s}
    />
  );
}

/* A person with a live presence dot. */
export function Person({ person, showEmail = false }) {
  const status = usePresence(person);
  if (!person) return <span className="opacity-70">Unassigned</span>;
  return (
    <span className="inline-flex items-center gap-1.5 min-w-0">
      <PresenceDot status={status} />
      <span className="truncate">{person.username || person.email}</span>
      {showEmail && person.email && <span className="truncate text-xs opacity-70">({person.email})</span>}
    </span>
  );
}

const STATUS_CLASS = { 'To-Do': 'badge-warning', 'In Progress': 'badge-info', Completed: 'badge-success' };
export function StatusBadge({ status }) {
  return <span className={`badge badge-sm whitespace-nowrap ${STATUS_CLASS[status] || 'badge-ghost'}`} data-status={status}>{status}</span>;
}

const PRIORITY_DOT = { High: 'bg-error', Medium: 'bg-warning', Low: 'bg-success' };
export function PriorityBadge({ priority }) {
  if (!priority) return <span className="badge badge-sm badge-ghost whitespace-nowrap">Not triaged</span>;
  return (
    <span className="badge badge-sm border-base-300 bg-base-100 whitespace-nowrap gap-1.5" data-priority={priority}>
      <span className={`inline-block h-2 w-2 rounded-full ${PRIORITY_DOT[priority] || 'bg-base-300'}`} aria-hidden="true" />
      {priority} priority
    </span>
  );
}

export function RoleBadge({ role }) {
  const cls = role === 'admin' ? 'badge-secondary' : role === 'moderator' ? 'badge-primary' : 'badge-ghost';
  return <span className={`badge badge-sm ${cls}`}>{role}</span>;
}

export function Skills({ skills }) {
  if (!skills || skills.length === 0) return <span className="opacity-70">—</span>;
  return (
    <ul className="flex flex-wrap gap-1" aria-label="Skills">
      {skills.map((s) => <li key={s} className="badge badge-sm border-base-content/30 bg-base-100">{s}</li>)}
    </ul>
  );
}

export function Alert({ kind = 'error', children, onClose }) {
  if (!children) return null;
  const cls = { error: 'alert-error', success: 'alert-success', info: 'alert-info', warning: 'alert-warning' }[kind];
  return (
    <div role={kind === 'error' ? 'alert' : 'status'} className={`alert ${cls} text-sm`}>
      <span>{children}</span>
      {onClose && (
        <button type="button" className="btn btn-ghost btn-xs" onClick={onClose} aria-label="Dismiss">✕</button>
      )}
    </div>
  );
}

export function Spinner({ label = 'Loading' }) {
  return (
    <div className="flex items-center gap-2 py-8 justify-center opacity-80" role="status">
      <span className="loading loading-spinner loading-md" aria-hidden="true" />
      <span>{label}…</span>
    </div>
  );
}

export function PageTitle({ children, sub, actions }) {
  return (
    <div className="mb-4 flex flex-wrap items-end justify-between gap-2">
      <div>
        <h1 className="text-2xl font-bold">{children}</h1>
        {sub && <p className="text-sm opacity-75">{sub}</p>}
      </div>
      {actions}
    </div>
  );
}

export function Kpi({ label, value, hint, tone = '' }) {
  return (
    <div className="stat rounded-box bg-base-100 border border-base-300 shadow-sm py-3 px-4">
      <div className="stat-title text-base-content/75">{label}</div>
      <div className={`stat-value text-2xl ${tone}`} data-kpi={label}>{value}</div>
      {hint && <div className="stat-desc text-base-content/70">{hint}</div>}
    </div>
  );
}

export function Logo({ className = 'h-6 w-6' }) {
  return (
    <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32" className={className} aria-hidden="true">
      <rect width="32" height="32" rx="7" fill="var(--color-primary)" />
      <path d="M8 11h16v3a2 2 0 0 0 0 4v3H8v-3a2 2 0 0 0 0-4z" fill="var(--color-primary-content)" />
    </svg>
  );
}

/* The browser tab's title for the page shown. */
export function useTitle(title) {
  useEffect(() => {
    document.title = title ? `${title} · Ticket Assistant` : 'Ticket Assistant';
  }, [title]);
}


/* One request the user started (a form's submit, a select's change): busy
   while it runs, and the server's message if it failed (clear() drops it).
   run(fn) awaits fn. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  async function run(fn) {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  }
  return { busy, error, run, clear: () => setError(null) };
}
