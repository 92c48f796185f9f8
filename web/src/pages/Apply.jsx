// Apply to become a moderator: the caller's latest request and its state
// (pending, accepted, rejected with the cooldown left), and the form when a
// new application is allowed.

import { useCallback, useEffect, useState } from 'react';
import { Link } from 'react-router-dom';
import { api } from '../api.js';
import { formatDate } from '../format.js';
import { useSession } from '../session.jsx';
import { Alert, PageTitle, Skills, Spinner, useTitle } from '../components/Bits.jsx';

const STATE_BADGE = { pending: 'badge-warning', accepted: 'badge-success', rejected: 'badge-error' };

export default function Apply() {
  useTitle('Become a moderator');
  const { user, updateUser } = useSession();
  const [mine, setMine] = useState(null);
  const [error, setError] = useState(null);
  const [skills, setSkills] = useState((user.skills || []).join(', '));
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(null);

  const load = useCallback(async () => {
    try {
      const r = await api('/mod-requests/me');
      setMine(r);
      // an accepted request means the server made us a moderator
      if (r.request && r.request.status === 'accepted' && user.role === 'user') updateUser({ role: 'moderator' });
    } catch (e) {
      setError(e.message);
    }
  }, [user.role, updateUser]);
  useEffect(() => { load(); }, [load]);

  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const r = await api('/mod-requests', { method: 'POST', body: { skills } });
      setDone(r.message || 'Request created');
      await load();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  }

  const accepted = mine && mine.request && mine.request.status === 'accepted';
  if (user.role !== 'user' && !accepted) {
    if (!mine && !error && user.role === 'moderator') return <Spinner label="Loading your application" />;
    return (
      <section>
        <PageTitle>Moderator application</PageTitle>
        <Alert kind="info">You are already {user.role === 'admin' ? 'an admin' : 'a moderator'}: there is nothing to apply for.</Alert>
      </section>
    );
  }
  if (!mine && !error) return <Spinner label="Loading your application" />;

  const req = mine && mine.request;
  const cooldown = mine ? mine.cooldownHours || 0 : 0;
  const canApply = mine && (!req || req.status === 'rejected') && cooldown === 0;

  return (
    <section className="flex flex-col gap-4 max-w-2xl" aria-labelledby="apply-h">
      <PageTitle sub="Moderators answer tickets that match their skills."><span id="apply-h">Become a moderator</span></PageTitle>
      {done && <Alert kind="success">{done}</Alert>}
      <Alert>{error}</Alert>

      {req && (
        <div className="card bg-base-100 border border-base-300 shadow-sm" data-testid="my-request">
          <div className="card-body p-4 gap-2">
            <h2 className="card-title text-base">
              Your latest application <span className={`badge ${STATE_BADGE[req.status] || ''}`} data-testid="request-status">{req.status}</span>
            </h2>
            <p className="text-sm">Submitted {formatDate(req.createdAt)}</p>
            <div className="text-sm flex gap-2 items-center flex-wrap">Skills: <Skills skills={req.skills} /></div>
            {req.status === 'pending' && <p className="text-sm">An admin will review it; you will get an email with the decision.</p>}
            {req.status === 'accepted' && (
              <p className="text-sm">Accepted — you are now a moderator. <Link className="link" to="/">See your tickets</Link>.</p>
            )}
            {req.status === 'rejected' && (
              <p className="text-sm">
                Rejected {req.rejectedAt ? formatDate(req.rejectedAt) : ''}.{' '}
                {cooldown > 0
                  ? <>You can apply again in <strong data-testid="cooldown">{cooldown} hour{cooldown === 1 ? '' : 's'}</strong>.</>
                  : 'You can apply again now.'}
              </p>
            )}
          </div>
        </div>
      )}

      {canApply && (
        <form onSubmit={submit} className="card bg-base-100 border border-base-300 shadow-sm">
          <div className="card-body p-4 gap-3">
            <h2 className="card-title text-base">{req ? 'Apply again' : 'Apply'}</h2>
            <div>
              <label htmlFor="apply-skills" className="label font-medium">Your skills</label>
              <input id="apply-skills" className="input input-bordered w-full" required value={skills} onChange={(e) => setSkills(e.target.value)} aria-describedby="apply-skills-hint" />
              <p id="apply-skills-hint" className="text-xs opacity-70 mt-1">Comma-separated, e.g. billing, react, nginx (1–50 skills)</p>
            </div>
            <div className="flex justify-end">
              <button type="submit" className="btn btn-primary" disabled={busy || !skills.trim()}>
                {busy && <span className="loading loading-spinner loading-sm" aria-hidden="true" />}Submit application
              </button>
            </div>
          </div>
        </form>
      )}
    </section>
  );
}
