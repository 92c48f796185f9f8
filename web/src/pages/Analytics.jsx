// Admin analytics: everything GET /api/analytics returns, as KPI cards,
// charts and tables, plus the background jobs that failed for good (with a
// retry button).

import { useCallback, useEffect, useState } from 'react';
import { api } from '../api.js';
import { formatDate, hours } from '../format.js';
import { Alert, Kpi, PageTitle, Person, Spinner, useTitle } from '../components/Bits.jsx';
import { BarChart, DailyChart } from '../components/Charts.jsx';

function Card({ title, children, className = '' }) {
  return (
    <section className={`card bg-base-100 border border-base-300 shadow-sm min-w-0 ${className}`}>
      <div className="card-body p-4 gap-3">
        {title && <h2 className="card-title text-base">{title}</h2>}
        {children}
      </div>
    </section>
  );
}

function DeadJobs({ count, onRetried }) {
  const [jobs, setJobs] = useState(null);
  const [error, setError] = useState(null);
  const [flash, setFlash] = useState(null);
  const load = useCallback(async () => {
    try {
      const r = await api('/jobs', { query: { state: 'dead', limit: 20 } });
      setJobs(r.jobs || []);
    } catch (e) {
      setError(e.message);
    }
  }, []);
  useEffect(() => { if (count > 0) load(); else setJobs([]); }, [count, load]);

  async function retry(job) {
    setError(null);
    try {
      await api(`/jobs/${job._id}/retry`, { method: 'POST' });
      setFlash(`Job ${job.kind} queued again.`);
      setJobs((js) => js.filter((j) => j._id !== job._id));
      onRetried();
    } catch (e) {
      setError(e.message);
    }
  }
  if (!count && !flash) return null;
  return (
    <Card title="Failed background jobs" className="lg:col-span-2">
      {flash && <Alert kind="success">{flash}</Alert>}
      <Alert>{error}</Alert>
      {jobs && jobs.length > 0 && (
        <div className="overflow-x-auto" tabIndex={0} role="region" aria-label="Failed jobs">
          <table className="table table-sm">
            <thead><tr><th scope="col">Kind</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Updated</th><th scope="col"><span className="sr-only">Action</span></th></tr></thead>
            <tbody>
              {jobs.map((j) => (
                <tr key={j._id}>
                  <td>{j.kind}</td>
                  <td>{j.attempts}/{j.maxAttempts}</td>
                  <td className="max-w-xs break-words text-xs">{j.lastError || '—'}</td>
                  <td className="text-xs">{formatDate(j.updatedAt)}</td>
                  <td><button type="button" className="btn btn-xs" onClick={() => retry(j)}>Retry</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

export default function Analytics() {
  useTitle('Analytics');
  const [a, setA] = useState(null);
  const [error, setError] = useState(null);
  const load = useCallback(async () => {
    try {
      setA(await api('/analytics'));
      setError(null);
    } catch (e) {
      setError(e.message);
    }
  }, []);
  useEffect(() => { load(); }, [load]);

  if (error) return <Alert>{error}</Alert>;
  if (!a) return <Spinner label="Loading analytics" />;

  const t = a.totals || { tickets: 0, byStatus: {}, byPriority: {} };
  const bs = t.byStatus || {};
  const bp = t.byPriority || {};
  const open = (bs['To-Do'] || 0) + (bs['In Progress'] || 0);
  const b = a.backlog || {};
  const tr = a.triage || {};
  const jobs = a.jobs || {};
  const unprioritised = Math.max(0, (t.tickets || 0) - (bp.Low || 0) - (bp.Medium || 0) - (bp.High || 0));

  return (
    <section className="flex flex-col gap-4" aria-labelledby="an-h">
      <PageTitle sub="Whole system, live from the store" actions={<button type="button" className="btn btn-sm" onClick={load}>Refresh</button>}>
        <span id="an-h">Analytics</span>
      </PageTitle>

      <div className="grid grid-cols-2 lg:grid-cols-4 gap-3">
        <Kpi label="Tickets" value={t.tickets ?? 0} hint={`${open} open`} />
        <Kpi label="First response (median)" value={hours(a.firstResponse?.medianHours)} hint={`p90 ${hours(a.firstResponse?.p90Hours)} · ${a.firstResponse?.samples ?? 0} tickets`} />
        <Kpi label="Resolution (median)" value={hours(a.resolution?.medianHours)} hint={`p90 ${hours(a.resolution?.p90Hours)} · ${a.resolution?.samples ?? 0} tickets`} />
        <Kpi label="Triaged by AI" value={tr.triaged ?? 0} hint={`${tr.pending ?? 0} waiting · ${tr.fallbacks ?? 0} fallbacks`} />
      </div>

      <div className="grid gap-4 lg:grid-cols-2">
        <Card>
          <BarChart title="Tickets by status" data={[
            { label: 'To-Do', value: bs['To-Do'] || 0, color: 'warning' },
            { label: 'In Progress', value: bs['In Progress'] || 0, color: 'info' },
            { label: 'Completed', value: bs.Completed || 0, color: 'success' },
          ]} />
        </Card>
        <Card>
          <BarChart title="Tickets by priority" data={[
            { label: 'High', value: bp.High || 0, color: 'error' },
            { label: 'Medium', value: bp.Medium || 0, color: 'warning' },
            { label: 'Low', value: bp.Low || 0, color: 'success' },
            ...(unprioritised ? [{ label: 'Not triaged', value: unprioritised, color: 'neutral' }] : []),
          ]} />
        </Card>
        <Card className="lg:col-span-2">
          <DailyChart daily={a.daily || []} />
        </Card>
        <Card>
          <BarChart title="Open tickets by age" data={[
            { label: 'Under 1 day', value: b.under1d || 0, color: 'success' },
            { label: '1–3 days', value: b.d1to3 || 0, color: 'info' },
            { label: '3–7 days', value: b.d3to7 || 0, color: 'warning' },
            { label: 'Over 7 days', value: b.over7d || 0, color: 'error' },
          ]} />
        </Card>
        <Card>
          <BarChart title="Background jobs" data={[
            { label: 'Pending', value: jobs.pending || 0, color: 'warning' },
            { label: 'Running', value: jobs.running || 0, color: 'info' },
            { label: 'Done', value: jobs.done || 0, color: 'success' },
            { label: 'Dead', value: jobs.dead || 0, color: 'error' },
          ]} />
          <BarChart title="Triage by provider" data={Object.entries(tr.byProvider || {}).map(([k, v]) => ({ label: k, value: v, color: 'secondary' }))} />
        </Card>
        <Card title="Moderators" className="lg:col-span-2">
          {(a.moderators || []).length === 0 ? <p className="text-sm opacity-75">No moderators yet.</p> : (
            <div className="overflow-x-auto" tabIndex={0} role="region" aria-label="Moderators">
              <table className="table table-sm">
                <caption className="sr-only">Load and performance per moderator</caption>
                <thead><tr><th scope="col">Moderator</th><th scope="col">Open (assigned)</th><th scope="col">Resolved</th><th scope="col">Avg. resolution</th></tr></thead>
                <tbody>
                  {a.moderators.map((m) => (
                    <tr key={m._id}>
                      <td><Person person={m} /></td>
                      <td>{m.active}</td>
                      <td>{m.resolved}</td>
                      <td>{hours(m.averageResolutionTimeHours)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Card>
        {a.sla && (
          <Card title="Within SLA (completed tickets)" className="lg:col-span-2">
            <dl className="grid grid-cols-3 gap-3" data-testid="sla-figures">
              {['High', 'Medium', 'Low'].map((p) => (
                <div key={p} className="min-w-0">
                  <dt className="text-sm opacity-75">{p}</dt>
                  <dd className="text-xl font-semibold" data-sla-priority={p}>
                    {a.sla[p]?.withinSla == null ? '—' : `${Math.round(a.sla[p].withinSla)} %`}
                  </dd>
                  <dd className="text-xs opacity-75">{a.sla[p]?.completed ?? 0} completed · {a.sla[p]?.breached ?? 0} breached</dd>
                </div>
              ))}
            </dl>
          </Card>
        )}
        <DeadJobs count={jobs.dead || 0} onRetried={load} />
      </div>
    </section>
  );
}
