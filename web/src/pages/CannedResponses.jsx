// Staff: the team's canned responses -- add, edit, delete.  Everyone on
// the staff sees and uses them all; their owner or an admin changes them
// (the server says so with a 403 otherwise, shown here).

import { useCallback, useEffect, useState } from 'react';
import { api } from '../api.js';
import { timeAgo } from '../format.js';
import { useSession } from '../session.jsx';
import { Alert, PageTitle, Spinner, useAction, useTitle } from '../components/Bits.jsx';

function Editor({ initial, onSave, onCancel, label }) {
  const [title, setTitle] = useState(initial?.title || '');
  const [body, setBody] = useState(initial?.body || '');
  const { busy, error, run } = useAction();
  const idp = initial ? `c-${initial._id}` : 'c-new';

  function submit(e) {
    e.preventDefault();
    run(async () => {
      await onSave({ title, body });
      if (!initial) { setTitle(''); setBody(''); }
    });
  }
  return (
    <form onSubmit={submit} className="flex flex-col gap-2" data-testid={initial ? 'canned-edit' : 'canned-new'}>
      <label htmlFor={`${idp}-title`} className="label font-medium">Title</label>
      <input id={`${idp}-title`} className="input input-bordered w-full" maxLength={100} required value={title} onChange={(e) => setTitle(e.target.value)} />
      <label htmlFor={`${idp}-body`} className="label font-medium">Text</label>
      <textarea id={`${idp}-body`} className="textarea textarea-bordered w-full min-h-20" maxLength={5000} required value={body} onChange={(e) => setBody(e.target.value)} />
      <Alert>{error}</Alert>
      <div className="flex justify-end gap-2">
        {onCancel && <button type="button" className="btn btn-sm" onClick={onCancel}>Cancel</button>}
        <button type="submit" className="btn btn-primary btn-sm" disabled={busy || !title.trim() || !body.trim()}>{label}</button>
      </div>
    </form>
  );
}

export default function CannedResponses() {
  useTitle('Canned responses');
  const { user } = useSession();
  const [list, setList] = useState(null);
  const [editing, setEditing] = useState(null);
  const [error, setError] = useState(null);

  const load = useCallback(async () => {
    try {
      const r = await api('/canned-responses');
      setList(r.cannedResponses || []);
      setError(null);
    } catch (e) {
      setError(e.message);
    }
  }, []);
  useEffect(() => { load(); }, [load]);

  async function create(v) {
    await api('/canned-responses', { method: 'POST', body: v });
    load();
  }
  async function update(c, v) {
    await api(`/canned-responses/${c._id}`, { method: 'PATCH', body: v });
    setEditing(null);
    load();
  }
  async function remove(c) {
    try {
      await api(`/canned-responses/${c._id}`, { method: 'DELETE' });
      load();
    } catch (e) {
      setError(e.message);
    }
  }

  const mayChange = (c) => user.role === 'admin' || c.owner?._id === user._id;
  return (
    <section aria-labelledby="canned-h" className="flex flex-col gap-4">
      <PageTitle sub="Shared by the whole team; insert them from a ticket's reply box">
        <span id="canned-h">Canned responses</span>
      </PageTitle>
      <Alert>{error}</Alert>
      <div className="card bg-base-100 border border-base-300 shadow-sm">
        <div className="card-body p-4 gap-2">
          <h2 className="card-title text-base">New canned response</h2>
          <Editor onSave={create} label="Add" />
        </div>
      </div>
      {!list && !error && <Spinner label="Loading canned responses" />}
      {list && list.length === 0 && <p className="opacity-75">None yet.</p>}
      {list && list.length > 0 && (
        <ul className="flex flex-col gap-2" aria-label="Canned responses" data-testid="canned-list">
          {list.map((c) => (
            <li key={c._id} className="card bg-base-100 border border-base-300 shadow-sm" data-canned={c.title}>
              <div className="card-body p-4 gap-2">
                {editing === c._id ? (
                  <Editor initial={c} onSave={(v) => update(c, v)} onCancel={() => setEditing(null)} label="Save" />
                ) : (
                  <>
                    <div className="flex flex-wrap items-center justify-between gap-2">
                      <h3 className="font-semibold break-words">{c.title}</h3>
                      <span className="text-xs opacity-75">by {c.owner?.username || '—'} · {timeAgo(c.updatedAt)}</span>
                    </div>
                    <p className="whitespace-pre-wrap break-words text-sm">{c.body}</p>
                    {mayChange(c) && (
                      <div className="flex justify-end gap-2">
                        <button type="button" className="btn btn-sm" onClick={() => setEditing(c._id)}>Edit</button>
                        <button type="button" className="btn btn-sm" onClick={() => remove(c)}>Delete</button>
                      </div>
                    )}
                  </>
                )}
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
