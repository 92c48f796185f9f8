// Assignment by hand (PATCH /api/tickets/:id/assignee): an admin picks any
// moderator or admin, or hands the ticket back to the assignment job; the
// assigned moderator can only hand it back.  onChanged(ticket) gets the
// answer's ticket (null: the caller no longer sees it).

import { useEffect, useState } from 'react';
import { api } from '../api.js';
import { idOf } from '../format.js';
import { useAction } from './Bits.jsx';

export function canSetAssignee(user, ticket) {
  if (!user || !ticket) return false;
  return user.role === 'admin' || (user.role === 'moderator' && idOf(ticket.assignedTo) === user._id);
}

export default function AssigneeControl({ user, ticket, onChanged }) {
  const admin = user.role === 'admin';
  const [staff, setStaff] = useState([]);
  const [pick, setPick] = useState('');
  const { busy, error, run } = useAction();
  const current = idOf(ticket.assignedTo);

  useEffect(() => {
    if (!admin) return undefined;
    let gone = false;
    api('/users').then(
      (users) => !gone && setStaff((users || []).filter((u) => u.role === 'moderator' || u.role === 'admin')),
      () => {},
    );
    return () => { gone = true; };
  }, [admin]);

  function send(assignedTo) {
    run(async () => {
      const r = await api(`/tickets/${ticket._id}/assignee`, { method: 'PATCH', body: { assignedTo } });
      setPick('');
      // a moderator who handed it back no longer sees it (unless theirs)
      const stillMine = admin || idOf(ticket.createdBy) === user._id;
      onChanged(stillMine ? r.ticket : null, r.message);
    });
  }

  return (
    <div className="flex flex-col gap-2" data-testid="assignee-control">
      {admin && (
        <form className="flex flex-wrap items-end gap-2" onSubmit={(e) => { e.preventDefault(); if (pick) send(pick); }}>
          <div className="flex flex-col gap-1">
            <label htmlFor="assignee-select" className="text-xs font-medium">Assign to</label>
            <select id="assignee-select" className="select select-bordered select-sm w-48" value={pick} onChange={(e) => setPick(e.target.value)} disabled={busy}>
              <option value="">Choose a person…</option>
              {staff.filter((u) => u._id !== current).map((u) => (
                <option key={u._id} value={u._id}>{u.username} ({u.role})</option>
              ))}
            </select>
          </div>
          <button type="submit" className="btn btn-sm btn-primary" disabled={busy || !pick}>Assign</button>
        </form>
      )}
      {current && (
        <button type="button" className="btn btn-sm btn-outline w-fit" disabled={busy} onClick={() => send(null)}>
          Hand back
        </button>
      )}
      {current && <p className="text-xs opacity-75">Handing back runs the automatic assignment again, without {admin ? 'the current assignee' : 'you'}.</p>}
      {error && <span role="alert" className="text-error text-xs">{error}</span>}
    </div>
  );
}
