// The canned-response picker of the reply box (staff): choosing one
// inserts its body into the reply.  The list is the team's
// (GET /api/canned-responses), loaded when the picker is first used.

import { useState } from 'react';
import { api } from '../api.js';

export default function CannedPicker({ onInsert }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);

  async function open() {
    if (list) return;
    try {
      const r = await api('/canned-responses');
      setList(r.cannedResponses || []);
    } catch (e) {
      setError(e.message);
    }
  }

  function choose(e) {
    const c = (list || []).find((x) => x._id === e.target.value);
    if (c) onInsert(c.body);
    e.target.value = '';
  }

  return (
    <div className="flex items-center gap-2">
      <label htmlFor="canned-pick" className="text-sm font-medium">Canned response</label>
      <select id="canned-pick" className="select select-bordered select-sm max-w-xs" defaultValue="" onFocus={open} onMouseDown={open} onChange={choose} data-testid="canned-picker">
        <option value="" disabled>{list ? (list.length ? 'Insert…' : 'None yet') : 'Insert…'}</option>
        {(list || []).map((c) => <option key={c._id} value={c._id}>{c.title}</option>)}
      </select>
      {error && <span className="text-error text-xs" role="alert">{error}</span>}
    </div>
  );
}
