// A ticket's history (GET /api/tickets/:id/history): who changed what and
// when, oldest first.  The server leaves out what a requester may not see
// (staff-only entries, the assignment explanation); refreshKey reloads it
// after a change seen live.

import { useCallback, useEffect, useState } from 'react';
import { api } from '../api.js';
import { formatDate, timeAgo } from '../format.js';

function show(v) {
  if (v === null || v === undefined) return 'none';
  if (Array.isArray(v)) return v.length ? v.join(', ') : 'none';
  if (typeof v === 'object') return v.username || v._id || '—';
  return String(v);
}

const LABELS = {
  created: 'Ticket filed',
  status: 'Status',
  assignee: 'Assignee',
  priority: 'Priority',
  skills: 'Skills',
  note: 'Internal note',
  sla: 'SLA',
};

function Entry({ e }) {
  const label = LABELS[e.action] || e.action;
  const who = e.actor ? e.actor.username || 'a user' : 'the assistant';
  let what;
  if (e.action === 'created') what = <>{label}</>;
  else if (e.action === 'assignee' && !e.to && !e.from) what = <>No moderator could be assigned</>;
  else if (e.action === 'assignee' && !e.to) what = <>Handed back from <strong>{show(e.from)}</strong></>;
  else if (e.from === null || e.from === undefined || (Array.isArray(e.from) && e.from.length === 0)) {
    what = <>{label} set to <strong>{show(e.to)}</strong></>;
  } else {
    what = <>{label}: {show(e.from)} → <strong>{show(e.to)}</strong></>;
  }
  return (
    <li className="flex flex-col" data-action={e.action} data-staff-only={e.staffOnly ? 'true' : undefined}>
      <span className="text-sm">
        {what}
        {e.staffOnly && <span className="badge badge-xs badge-warning ml-1">staff only</span>}
      </span>
      <span className="text-xs opacity-75">
        by {who} · <time dateTime={e.at} title={formatDate(e.at)}>{timeAgo(e.at)}</time>
      </span>
      {e.explanation && e.explanation.reason && (
        <span className="text-xs opacity-75">{e.explanation.reason}</span>
      )}
    </li>
  );
}

export default function HistoryTimeline({ ticketId, refreshKey }) {
  const [entries, setEntries] = useState(null);
  const [error, setError] = useState(null);

  const load = useCallback(async () => {
    try {
      const r = await api(`/tickets/${ticketId}/history`);
      setEntries(r.history || []);
      setError(null);
    } catch (e) {
      setError(e.message);
    }
  }, [ticketId]);
  useEffect(() => { load(); }, [load, refreshKey]);

  return (
    <section className="card bg-base-100 border border-base-300 shadow-sm" aria-labelledby="history-h">
      <div className="card-body p-4 gap-2">
        <h2 id="history-h" className="card-title text-base">History</h2>
        {error && <p className="text-error text-sm" role="alert">{error}</p>}
        {!entries && !error && <p className="text-sm opacity-75">Loading…</p>}
        {entries && (
          <ol className="flex flex-col gap-2 border-l-2 border-base-300 pl-3" data-testid="history">
            {entries.map((e) => <Entry key={e._id} e={e} />)}
          </ol>
        )}
      </div>
    </section>
  );
}
