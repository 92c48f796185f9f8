// Tickets: KPI cards for the caller's whole scope (counts from the API, not
// from the page shown), a form to file a ticket, filters (status, priority,
// search), server-side pagination and, for staff, inline status changes.
// The tickets on the page follow live triage, assignment and status events.

import { useCallback, useEffect, useRef, useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { api, PRIORITIES, STATUSES } from '../api.js';
import { formatDate, idOf, timeAgo } from '../format.js';
import { useReconnect, useSession, useSocketEvent } from '../session.jsx';
import { Alert, Kpi, PageTitle, Person, PriorityBadge, Spinner, StatusBadge, useAction, useTitle } from '../components/Bits.jsx';
import { SlaBadge } from '../components/Sla.jsx';

const LIMIT = 10;

export function canChangeStatus(user, ticket) {
  if (!user || !ticket) return false;
  if (user.role === 'admin') return true;
  return user.role === 'moderator' && idOf(ticket.assignedTo) === user._id;
}

export function StatusSelect({ ticket, onChanged, id, size = 'select-sm' }) {
  const { busy, error, run } = useAction();
  function change(e) {
    const status = e.target.value;
    run(async () => {
      // a ticket changed since it was loaded is refused (409): reload
      const r = await api(`/tickets/${ticket._id}/status`, { method: 'PATCH', body: { status, expectedUpdatedAt: ticket.updatedAt } });
      onChanged(r.ticket || { ...ticket, status });
    });
  }
  return (
    <div className="flex flex-col gap-1">
      <label className="sr-only" htmlFor={id}>Status of “{ticket.title}”</label>
      <select id={id} className={`select select-bordered ${size} w-40`} value={ticket.status} onChange={change} disabled={busy}>
        {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
      </select>
      {error && <span role="alert" className="text-error text-xs">{error}</span>}
    </div>
  );
}

function useKpis(refreshKey) {
  const [kpis, setKpis] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let gone = false;
    Promise.all(
      STATUSES.map((status) => api('/tickets', { query: { status, limit: 1 } }).then((r) => r.pagination.total)),
    ).then(
      (counts) => {
        if (gone) return;
        const byStatus = Object.fromEntries(STATUSES.map((s, i) => [s, counts[i]]));
        setKpis({ total: counts.reduce((a, b) => a + b, 0), byStatus });
        setError(null);
      },
      (e) => !gone && setError(e.message),
    );
    return () => { gone = true; };
  }, [refreshKey]);
  return [kpis, error];
}

function NewTicket({ onCreated }) {
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState({ title: '', description: '' });
  const { busy, error, run, clear } = useAction();

  function submit(e) {
    e.preventDefault();
    run(async () => {
      const r = await api('/tickets', { method: 'POST', body: { title: form.title, description: form.description } });
      setForm({ title: '', description: '' });
      setOpen(false);
      onCreated(r.ticket, r.message);
    });
  }

  if (!open) {
    return <button type="button" className="btn btn-primary" onClick={() => setOpen(true)}>+ New ticket</button>;
  }
  return (
    <form onSubmit={submit} className="card bg-base-100 border border-base-300 shadow-sm w-full" aria-labelledby="new-ticket-h">
      <div className="card-body gap-3 p-4 sm:p-6">
        <h2 id="new-ticket-h" className="card-title text-lg">Create a ticket</h2>
        <div>
          <label htmlFor="ticket-title" className="label font-medium">Title</label>
          <input id="ticket-title" className="input input-bordered w-full" maxLength={200} required autoFocus value={form.title} onChange={(e) => setForm({ ...form, title: e.target.value })} />
        </div>
        <div>
          <label htmlFor="ticket-description" className="label font-medium">Description</label>
          <textarea id="ticket-description" className="textarea textarea-bordered w-full min-h-28" maxLength={10000} required value={form.description} onChange={(e) => setForm({ ...form, description: e.target.value })} placeholder="What happened? What did you expect? Steps to reproduce…" />
        </div>
        <Alert>{error}</Alert>
        <div className="flex gap-2 justify-end">
          <button type="button" className="btn btn-ghost" onClick={() => { setOpen(false); clear(); }}>Cancel</button>
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy && <span className="loading loading-spinner loading-sm" aria-hidden="true" />}Submit ticket
          </button>
        </div>
      </div>
    </form>
  );
}

function Pagination({ pagination, onPage }) {
  if (!pagination || pagination.pages <= 1) return null;
  const { page, pages } = pagination;
  return (
    <nav className="flex items-center justify-center gap-2 mt-4" aria-label="Pagination">
      <button type="button" className="btn btn-sm" disabled={page <= 1} onClick={() => onPage(page - 1)}>« Previous</button>
      <span className="text-sm" aria-live="polite">Page {page} of {pages}</span>
      <button type="button" className="btn btn-sm" disabled={page >= pages} onClick={() => onPage(page + 1)}>Next »</button>
    </nav>
  );
}

export default function Tickets() {
  useTitle('Tickets');
  const { user, holdRoom } = useSession();
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, parseInt(params.get('page') || '1', 10) || 1);
  const status = params.get('status') || '';
  const priority = params.get('priority') || '';
  const search = params.get('search') || '';
  const [searchText, setSearchText] = useState(search);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [flash, setFlash] = useState(null);
  const [kpiKey, setKpiKey] = useState(0);
  const [kpis, kpiError] = useKpis(kpiKey);
  const reloadRef = useRef(0);

  const load = useCallback(async () => {
    const n = ++reloadRef.current;
    try {
      const r = await api('/tickets', { query: { page, limit: LIMIT, status, priority, search } });
      if (n !== reloadRef.current) return;
      setData(r);
      setError(null);
    } catch (e) {
      if (n === reloadRef.current) setError(e.message);
    }
  }, [page, status, priority, search]);

  useEffect(() => { load(); }, [load]);
  useEffect(() => { setSearchText(search); }, [search]);
  // events sent while the socket was away are caught by reloading
  useReconnect(() => { load(); setKpiKey((k) => k + 1); });

  // follow the tickets on this page live
  const ids = data ? data.tickets.map((t) => t._id).join(',') : '';
  useEffect(() => {
    if (!ids) return undefined;
    const leaves = ids.split(',').map((id) => holdRoom(id));
    return () => leaves.forEach((leave) => leave());
  }, [ids, holdRoom]);

  const patchTicket = useCallback((id, patch) => {
    setData((d) => d && { ...d, tickets: d.tickets.map((t) => (t._id === id ? { ...t, ...patch } : t)) });
  }, []);
  useSocketEvent('ticket_updated', (ev) => {
    if (!ev || !ev.ticketId) return;
    const { ticketId, assignment, ...rest } = ev;
    patchTicket(ticketId, rest);
    if (rest.status) setKpiKey((k) => k + 1);
  });
  useSocketEvent('status_updated', (ev) => {
    if (!ev || !ev.ticketId) return;
    patchTicket(ev.ticketId, { status: ev.status });
    setKpiKey((k) => k + 1);
  });
  // a ticket assigned to me joins my list; one taken from me leaves it
  useSocketEvent('ticket_assigned', (ev) => {
    if (!ev || ev.userId !== user._id) return;
    load();
    setKpiKey((k) => k + 1);
  });
  useSocketEvent('room_left', (ev) => {
    if (!ev || !ev.ticketId) return;
    load();
    setKpiKey((k) => k + 1);
  });

  function setFilter(key, value) {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value); else next.delete(key);
    if (key !== 'page') next.delete('page');
    setParams(next);
  }

  function onCreated(ticket, message) {
    setFlash({ text: message || 'Ticket created', id: ticket._id });
    setKpiKey((k) => k + 1);
    if (page === 1 && !status && !priority && !search) {
      setData((d) => d && { ...d, tickets: [ticket, ...d.tickets.filter((t) => t._id !== ticket._id)].slice(0, LIMIT) });
    }
    load();
  }

  const scope = user.role === 'admin' ? 'All tickets' : user.role === 'moderator' ? 'Tickets assigned to you or filed by you' : 'Your tickets';

  return (
    <section aria-labelledby="tickets-h">
      <PageTitle sub={scope} actions={null}><span id="tickets-h">Tickets</span></PageTitle>

      <div className="grid grid-cols-2 md:grid-cols-4 gap-3 mb-4" aria-label="Ticket counts">
        <Kpi label="Total" value={kpis ? kpis.total : '…'} />
        <Kpi label="To-Do" value={kpis ? kpis.byStatus['To-Do'] : '…'} />
        <Kpi label="In Progress" value={kpis ? kpis.byStatus['In Progress'] : '…'} />
        <Kpi label="Completed" value={kpis ? kpis.byStatus.Completed : '…'} />
      </div>
      <Alert>{kpiError}</Alert>

      <div className="mb-4"><NewTicket onCreated={onCreated} /></div>
      {flash && (
        <div className="mb-4">
          <Alert kind="success" onClose={() => setFlash(null)}>
            {flash.text}. <Link className="link" to={`/tickets/${flash.id}`}>Open the ticket</Link> to follow the AI triage live.
          </Alert>
        </div>
      )}

      <form
        className="flex flex-wrap items-end gap-2 mb-3 bg-base-100 border border-base-300 rounded-box p-3"
        role="search"
        onSubmit={(e) => { e.preventDefault(); setFilter('search', searchText.trim()); }}
      >
        <div className="grow min-w-48">
          <label htmlFor="f-search" className="label text-sm">Search title or description</label>
          <input id="f-search" type="search" className="input input-bordered input-sm w-full" maxLength={200} value={searchText} onChange={(e) => setSearchText(e.target.value)} />
        </div>
        <div>
          <label htmlFor="f-status" className="label text-sm">Status</label>
          <select id="f-status" className="select select-bordered select-sm" value={status} onChange={(e) => setFilter('status', e.target.value)}>
            <option value="">All statuses</option>
            {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </div>
        <div>
          <label htmlFor="f-priority" className="label text-sm">Priority</label>
          <select id="f-priority" className="select select-bordered select-sm" value={priority} onChange={(e) => setFilter('priority', e.target.value)}>
            <option value="">All priorities</option>
            {PRIORITIES.map((p) => <option key={p} value={p}>{p}</option>)}
          </select>
        </div>
        <button type="submit" className="btn btn-sm btn-neutral">Search</button>
        {(status || priority || search) && (
          <button type="button" className="btn btn-sm btn-ghost" onClick={() => setParams(new URLSearchParams())}>Clear filters</button>
        )}
      </form>

      <Alert>{error}</Alert>
      {!data && !error && <Spinner label="Loading tickets" />}
      {data && (
        <>
          <p className="text-sm opacity-75 mb-2" aria-live="polite">
            {data.pagination.total} ticket{data.pagination.total === 1 ? '' : 's'}{(status || priority || search) ? (data.pagination.total === 1 ? ' matches' : ' match') + ' the filters' : ''}
          </p>
          {data.tickets.length === 0 ? (
            <div className="text-center py-10 bg-base-100 rounded-box border border-base-300">
              <p className="font-medium">No tickets here yet.</p>
              <p className="text-sm opacity-75">{(status || priority || search) ? 'Try other filters.' : 'File one with “New ticket”.'}</p>
            </div>
          ) : (
            <ul className="flex flex-col gap-2" aria-label="Tickets" data-testid="ticket-list">
              {data.tickets.map((t) => (
                <li key={t._id} className="card card-border bg-base-100 shadow-sm" data-ticket-id={t._id}>
                  <div className="card-body p-4 gap-2">
                    <div className="flex flex-wrap items-start justify-between gap-2">
                      <h2 className="font-semibold text-base min-w-0 break-words">
                        <Link className="link link-hover" to={`/tickets/${t._id}`}>{t.title}</Link>
                      </h2>
                      <div className="flex flex-wrap gap-1 items-center">
                        <PriorityBadge priority={t.priority} />
                        <StatusBadge status={t.status} />
                        <SlaBadge ticket={t} />
                      </div>
                    </div>
                    <p className="text-sm opacity-80 line-clamp-2 break-words">{t.summary || t.description}</p>
                    <div className="flex flex-wrap items-center justify-between gap-2 text-xs">
                      <div className="flex flex-wrap gap-x-4 gap-y-1 opacity-90">
                        {user.role !== 'user' && <span className="inline-flex gap-1">By <Person person={t.createdBy} /></span>}
                        <span className="inline-flex gap-1" data-testid="assignee">Assigned to <Person person={t.assignedTo} /></span>
                        <span title={formatDate(t.createdAt)}>Created {timeAgo(t.createdAt)}</span>
                      </div>
                      {canChangeStatus(user, t) && (
                        <StatusSelect id={`status-${t._id}`} ticket={t} size="select-xs" onChanged={(nt) => { patchTicket(t._id, { status: nt.status }); setKpiKey((k) => k + 1); }} />
                      )}
                    </div>
                  </div>
                </li>
              ))}
            </ul>
          )}
          <Pagination pagination={data.pagination} onPage={(p) => setFilter('page', String(p))} />
        </>
      )}
    </section>
  );
}
