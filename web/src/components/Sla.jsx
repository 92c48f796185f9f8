// The SLA badge (issue 15 item 3): staff read a ticket's `sla` object
// (the API leaves it out for requesters, so nothing shows for them).
// Breached, due soon, or the next date due; "met" once completed in time.
// And the priority select staff use to move the dates.

import { api, PRIORITIES } from '../api.js';
import { useAction } from './Bits.jsx';

function until(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  const m = Math.round(Math.abs(ms) / 60000);
  const text = m < 60 ? `${m} min` : m < 48 * 60 ? `${Math.round(m / 6) / 10} h` : `${Math.round(m / 144) / 10} d`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

export function SlaBadge({ ticket }) {
  const sla = ticket && ticket.sla;
  if (!sla) return null;
  let kind = 'ok';
  let text;
  let title;
  if (sla.breached) {
    kind = 'breached';
    text = 'SLA breached';
    title = sla.breachedAt ? `Missed the date due ${new Date(sla.breachedAt).toLocaleString()}` : 'A target is overdue';
  } else if (ticket.status === 'Completed') {
    kind = 'met';
    text = 'SLA met';
  } else {
    const responding = !sla.firstResponseAt && Boolean(sla.firstResponseDue);
    const due = responding ? sla.firstResponseDue : sla.resolutionDue;
    kind = sla.dueSoon ? 'due_soon' : 'ok';
    text = `${responding ? 'Response' : 'Resolution'} due ${until(due)}`;
    title = `${sla.firstResponseDue ? `First response due ${new Date(sla.firstResponseDue).toLocaleString()}; r` : 'R'}esolution due ${new Date(sla.resolutionDue).toLocaleString()}`;
  }
  const cls = kind === 'breached' ? 'badge-error' : kind === 'due_soon' ? 'badge-warning' : kind === 'met' ? 'badge-success' : 'badge-ghost';
  return (
    <span className={`badge badge-sm whitespace-nowrap ${cls}`} data-testid="sla-badge" data-sla={kind} title={title}>
      {text}
    </span>
  );
}

/* Change a ticket's priority (admin, the assigned moderator): the SLA
   dates move with it (PATCH /api/tickets/:id/priority). */
export function PrioritySelect({ ticket, onChanged, id }) {
  const { busy, error, run } = useAction();
  function change(e) {
    const priority = e.target.value;
    run(async () => {
      const r = await api(`/tickets/${ticket._id}/priority`, { method: 'PATCH', body: { priority } });
      onChanged(r.ticket || { ...ticket, priority });
    });
  }
  return (
    <div className="flex flex-col gap-1">
      <label className="sr-only" htmlFor={id}>Priority of “{ticket.title}”</label>
      <select id={id} className="select select-bordered select-sm w-32" value={ticket.priority || ''} onChange={change} disabled={busy}>
        {!ticket.priority && <option value="" disabled>Not triaged</option>}
        {PRIORITIES.map((p) => <option key={p} value={p}>{p}</option>)}
      </select>
      {error && <span role="alert" className="text-error text-xs">{error}</span>}
    </div>
  );
}
