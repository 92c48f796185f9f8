// The SLA badge (issue 15 item 3): staff read a ticket's `sla` object
// (the API leaves it out for requesters, so nothing shows for them).
// Breached, due soon, or the next date due; "met" once completed in time.

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
    const responding = !sla.firstResponseAt;
    const due = responding ? sla.firstResponseDue : sla.resolutionDue;
    kind = sla.dueSoon ? 'due_soon' : 'ok';
    text = `${responding ? 'Response' : 'Resolution'} due ${until(due)}`;
    title = `First response due ${new Date(sla.firstResponseDue).toLocaleString()}; resolution due ${new Date(sla.resolutionDue).toLocaleString()}`;
  }
  const cls = kind === 'breached' ? 'badge-error' : kind === 'due_soon' ? 'badge-warning' : kind === 'met' ? 'badge-success' : 'badge-ghost';
  return (
    <span className={`badge badge-sm whitespace-nowrap ${cls}`} data-testid="sla-badge" data-sla={kind} title={title}>
      {text}
    </span>
  );
}
