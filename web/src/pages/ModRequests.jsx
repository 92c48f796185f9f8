// Admin: pending moderator applications, accept or reject.

import { useCallback, useEffect, useState } from 'react';
import { api } from '../api.js';
import { formatDate, timeAgo } from '../format.js';
import { Alert, PageTitle, Person, Skills, Spinner, useTitle } from '../components/Bits.jsx';

export default function ModRequests() {
  useTitle('Moderator requests');
  const [requests, setRequests] = useState(null);
  const [error, setError] = useState(null);
  const [flash, setFlash] = useState(null);
  const [busy, setBusy] = useState(null);

  const load = useCallback(async () => {
    try {
      const r = await api('/mod-requests');
      setRequests(r.requests || []);
      setError(null);
    } catch (e) {
      setError(e.message);
    }
  }, []);
  useEffect(() => { load(); }, [load]);

  async function decide(req, action) {
    setBusy(req._id + action);
    setError(null);
    setFlash(null);
    try {
      await api(`/mod-requests/${req._id}/decide`, { method: 'POST', body: { action } });
      setFlash(action === 'accept'
        ? `${req.username} is now a moderator.`
        : `${req.username}'s application was rejected.`);
      setRequests((rs) => rs.filter((r) => r._id !== req._id));
    } catch (e) {
      setError(e.message);
      load();
    } finally {
      setBusy(null);
    }
  }

  return (
    <section aria-labelledby="mr-h">
      <PageTitle sub="Pending applications, newest first" actions={<button type="button" className="btn btn-sm" onClick={load}>Refresh</button>}>
        <span id="mr-h">Moderator requests</span>
      </PageTitle>
      {flash && <div className="mb-3"><Alert kind="success">{flash}</Alert></div>}
      <Alert>{error}</Alert>
      {!requests && !error && <Spinner label="Loading requests" />}
      {requests && requests.length === 0 && (
        <div className="text-center py-10 bg-base-100 rounded-box border border-base-300">No pending applications.</div>
      )}
      {requests && requests.length > 0 && (
        <ul className="flex flex-col gap-2" aria-label="Pending applications">
          {requests.map((r) => (
            <li key={r._id} className="card bg-base-100 border border-base-300 shadow-sm" data-request={r.username}>
              <div className="card-body p-4 gap-2 sm:flex-row sm:items-center sm:justify-between">
                <div className="flex flex-col gap-1 min-w-0">
                  <div className="font-semibold"><Person person={r.applicant && typeof r.applicant === 'object' ? r.applicant : { _id: r._id, username: r.username }} /></div>
                  <div className="text-sm opacity-80 break-all">{r.email}</div>
                  <Skills skills={r.skills} />
                  <div className="text-xs opacity-75" title={formatDate(r.createdAt)}>Applied {timeAgo(r.createdAt)}</div>
                </div>
                <div className="flex gap-2 shrink-0">
                  <button type="button" className="btn btn-success btn-sm" disabled={busy !== null} onClick={() => decide(r, 'accept')} aria-label={`Accept ${r.username}`}>
                    {busy === r._id + 'accept' && <span className="loading loading-spinner loading-xs" aria-hidden="true" />}Accept
                  </button>
                  <button type="button" className="btn btn-error btn-sm" disabled={busy !== null} onClick={() => decide(r, 'reject')} aria-label={`Reject ${r.username}`}>
                    {busy === r._id + 'reject' && <span className="loading loading-spinner loading-xs" aria-hidden="true" />}Reject
                  </button>
                </div>
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
