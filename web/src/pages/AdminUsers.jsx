// Admin: every account with live presence and moderator stats; edit role
// and skills.

import { useCallback, useEffect, useMemo, useState } from 'react';
import { api } from '../api.js';
import { formatDate, hours, timeAgo } from '../format.js';
import { useSession } from '../session.jsx';
import { Alert, PageTitle, Person, RoleBadge, Skills, Spinner, useAction, useTitle } from '../components/Bits.jsx';

const ROLES = ['user', 'moderator', 'admin'];

function EditUser({ user, onSaved, onCancel }) {
  const [role, setRole] = useState(user.role);
  const [skills, setSkills] = useState((user.skills || []).join(', '));
  const { busy, error, run } = useAction();

  function save(e) {
    e.preventDefault();
    const list = skills.split(',').map((s) => s.trim()).filter(Boolean);
    run(async () => {
      const r = await api('/auth/update-user', { method: 'POST', body: { email: user.email, role, skills: list } });
      onSaved({ ...user, role, skills: list }, r.message || 'User updated');
    });
  }

  const id = `edit-${user._id}`;
  return (
    <form onSubmit={save} className="flex flex-col gap-2 bg-base-200 rounded-box p-3 mt-2" aria-label={`Edit ${user.username}`}>
      <div className="flex flex-wrap gap-3 items-end">
        <div>
          <label htmlFor={`${id}-role`} className="label text-sm">Role</label>
          <select id={`${id}-role`} className="select select-bordered select-sm" value={role} onChange={(e) => setRole(e.target.value)}>
            {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
          </select>
        </div>
        <div className="grow min-w-48">
          <label htmlFor={`${id}-skills`} className="label text-sm">Skills (comma-separated; empty clears)</label>
          <input id={`${id}-skills`} className="input input-bordered input-sm w-full" value={skills} onChange={(e) => setSkills(e.target.value)} />
        </div>
        <div className="flex gap-2">
          <button type="button" className="btn btn-ghost btn-sm" onClick={onCancel}>Cancel</button>
          <button type="submit" className="btn btn-primary btn-sm" disabled={busy}>
            {busy && <span className="loading loading-spinner loading-xs" aria-hidden="true" />}Save
          </button>
        </div>
      </div>
      <Alert>{error}</Alert>
    </form>
  );
}

export default function AdminUsers() {
  useTitle('Users');
  const { user: me } = useSession();
  const [users, setUsers] = useState(null);
  const [error, setError] = useState(null);
  const [flash, setFlash] = useState(null);
  const [editing, setEditing] = useState(null);
  const [filter, setFilter] = useState('');
  const [roleFilter, setRoleFilter] = useState('');

  const load = useCallback(async () => {
    try {
      const r = await api('/users');
      setUsers(Array.isArray(r) ? r : r.users || []);
      setError(null);
    } catch (e) {
      setError(e.message);
    }
  }, []);
  useEffect(() => { load(); }, [load]);

  const shown = useMemo(() => {
    if (!users) return [];
    const f = filter.trim().toLowerCase();
    return users.filter((u) => (!roleFilter || u.role === roleFilter)
      && (!f || u.username.toLowerCase().includes(f) || u.email.toLowerCase().includes(f)
        || (u.skills || []).some((s) => s.toLowerCase().includes(f))));
  }, [users, filter, roleFilter]);

  const counts = useMemo(() => {
    const c = { user: 0, moderator: 0, admin: 0 };
    for (const u of users || []) c[u.role] = (c[u.role] || 0) + 1;
    return c;
  }, [users]);

  return (
    <section aria-labelledby="users-h">
      <PageTitle sub={users ? `${users.length} accounts · ${counts.admin} admin · ${counts.moderator} moderators · ${counts.user} users` : null}>
        <span id="users-h">Users</span>
      </PageTitle>
      {flash && <div className="mb-3"><Alert kind="success" onClose={() => setFlash(null)}>{flash}</Alert></div>}
      <Alert>{error}</Alert>
      <div className="flex flex-wrap gap-2 items-end mb-3 bg-base-100 border border-base-300 rounded-box p-3" role="search">
        <div className="grow min-w-48">
          <label htmlFor="u-filter" className="label text-sm">Find by name, email or skill</label>
          <input id="u-filter" type="search" className="input input-bordered input-sm w-full" value={filter} onChange={(e) => setFilter(e.target.value)} />
        </div>
        <div>
          <label htmlFor="u-role" className="label text-sm">Role</label>
          <select id="u-role" className="select select-bordered select-sm" value={roleFilter} onChange={(e) => setRoleFilter(e.target.value)}>
            <option value="">All roles</option>
            {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
          </select>
        </div>
      </div>
      {!users && !error && <Spinner label="Loading users" />}
      {users && (
        <ul className="flex flex-col gap-2" aria-label="Users">
          {shown.map((u) => (
            <li key={u._id} className="card bg-base-100 border border-base-300 shadow-sm" data-user={u.username}>
              <div className="card-body p-4 gap-1">
                <div className="flex flex-wrap items-center justify-between gap-2">
                  <div className="flex flex-wrap items-center gap-2 min-w-0">
                    <span className="font-semibold"><Person person={u} /></span>
                    <RoleBadge role={u.role} />
                    <span className="text-sm opacity-80 break-all">{u.email}</span>
                  </div>
                  <button type="button" className="btn btn-sm btn-outline" onClick={() => setEditing(editing === u._id ? null : u._id)} aria-expanded={editing === u._id} aria-label={`Edit ${u.username}`}>
                    Edit
                  </button>
                </div>
                <div className="flex flex-wrap gap-x-6 gap-y-1 text-sm items-center">
                  <span className="flex gap-2 items-center">Skills: <Skills skills={u.skills} /></span>
                  {u.role !== 'user' && (
                    <>
                      <span>Resolved: <strong>{u.totalTicketsResolved ?? 0}</strong></span>
                      <span>Avg. resolution: <strong>{hours(u.averageResolutionTimeHours)}</strong></span>
                      <span>Last assigned: {u.lastAssignedAt ? timeAgo(u.lastAssignedAt) : 'never'}</span>
                    </>
                  )}
                  <span className="opacity-75">Joined {formatDate(u.createdAt)}</span>
                </div>
                {editing === u._id && (
                  <EditUser
                    user={u}
                    onCancel={() => setEditing(null)}
                    onSaved={(nu, message) => {
                      setUsers((us) => us.map((x) => (x._id === nu._id ? nu : x)));
                      setEditing(null);
                      setFlash(`${message}${nu._id === me._id ? ' (log in again for your own role change to show)' : ''}`);
                    }}
                  />
                )}
              </div>
            </li>
          ))}
          {shown.length === 0 && <li className="text-center py-6 opacity-75">No user matches.</li>}
        </ul>
      )}
    </section>
  );
}
