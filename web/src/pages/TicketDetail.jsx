// One ticket: description, the AI triage (summary, priority, skills, notes
// as Markdown), the people with live presence, for staff the assignment
// explanation and the status control, and the conversation.  Comments,
// status and triage/assignment arrive live through the ticket's room.
// Staff on the ticket may write internal notes (shown highlighted, never
// to the requester) and see who else is viewing and typing; replies and
// status changes carry expectedUpdatedAt, and a 409 asks for a reload.

import { useCallback, useEffect, useRef, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { api } from '../api.js';
import { formatDate, idOf, isStaff, timeAgo } from '../format.js';
import { useReconnect, useSession, useSocketEvent } from '../session.jsx';
import { Alert, PageTitle, Person, PriorityBadge, RoleBadge, Skills, Spinner, StatusBadge, useAction, useTitle } from '../components/Bits.jsx';
import { PrioritySelect, SlaBadge } from '../components/Sla.jsx';
import Markdown from '../components/Markdown.jsx';
import AssigneeControl, { canSetAssignee } from '../components/Assignee.jsx';
import HistoryTimeline from '../components/History.jsx';
import CannedPicker from '../components/Canned.jsx';
import { canChangeStatus, StatusSelect } from './Tickets.jsx';

function Assignment({ assignment, assignedTo }) {
  if (!assignment) {
    return <p className="text-sm opacity-75">Not assigned yet: the assignment runs right after the AI triage.</p>;
  }
  if (assignment.manual) {
    return <p className="text-sm" data-testid="assignment">Assigned by hand by {assignment.assignedBy?.username || 'an admin'}; the automatic assignment leaves it alone.</p>;
  }
  const cands = [...(assignment.candidates || [])].sort((a, b) => (b.score ?? -1) - (a.score ?? -1));
  const w = assignment.weights || {};
  return (
    <div className="flex flex-col gap-2" data-testid="assignment">
      {assignment.reason && <p className="text-sm">{assignment.reason}</p>}
      <p className="text-xs opacity-75">
        Score = {w.skill ?? 0.5}·skill + {w.availability ?? 0.3}·availability + {w.performance ?? 0.2}·performance
        {assignment.tieMargin != null && <> · ties within {assignment.tieMargin} go to the least recently assigned</>}
      </p>
      {cands.length > 0 && (
        <div className="overflow-x-auto" tabIndex={0} role="region" aria-label="Assignment scores">
          <table className="table table-xs">
            <caption className="sr-only">Candidates and their scores</caption>
            <thead>
              <tr><th scope="col">Candidate</th><th scope="col">Skill</th><th scope="col">Availability</th><th scope="col">Performance</th><th scope="col">Score</th><th scope="col">Note</th></tr>
            </thead>
            <tbody>
              {cands.map((c) => (
                <tr key={c._id} className={c._id === assignment.chosen ? 'bg-success/15 font-semibold' : ''}>
                  <td><Person person={c} /></td>
                  <td>{c.skill}</td>
                  <td>{c.availability}</td>
                  <td>{c.performance}</td>
                  <td>{c.score}</td>
                  <td className="text-xs">
                    {c._id === assignment.chosen ? 'chosen' : !c.eligible ? 'skipped (away)' : c.tied ? 'tied' : ''}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {assignment.excluded && assignment.excluded.length > 0 && <p className="text-xs opacity-75">Handed back: left out of this choice: {assignment.excluded.length} person(s).</p>}
      {!assignedTo && <p className="text-sm text-warning">No eligible moderator: the ticket waits in To-Do.</p>}
    </div>
  );
}

// Staff on this ticket: an admin, or the moderator it is assigned to.
function staffOn(user, ticket) {
  return user.role === 'admin' || (user.role === 'moderator' && idOf(ticket.assignedTo) === user._id);
}

// "changed meanwhile": a 409 with the ticket as it is now
export function Stale({ stale, onReload }) {
  if (!stale) return null;
  return (
    <div role="alert" className="alert alert-warning text-sm" data-testid="stale">
      <span>This ticket changed meanwhile; reload it to see what changed, then try again.</span>
      <button type="button" className="btn btn-sm" onClick={onReload}>Reload</button>
    </div>
  );
}

function Comments({ ticket, comments, onPosted, user, onReload }) {
  const [text, setText] = useState('');
  const [internal, setInternal] = useState(false);
  const [stale, setStale] = useState(false);
  const { busy, error, run } = useAction();
  const { socket } = useSession();
  const typedAt = useRef(0);
  const staff = isStaff(user);
  const onTicket = staffOn(user, ticket);
  const isCreator = idOf(ticket.createdBy) === user._id;
  const opened = comments.some((c) => !c.internal && (c.role === 'admin' || c.role === 'moderator'));
  const mayPost = onTicket || (isCreator && opened);

  // staff tell the other staff in the room they are typing (at most every
  // 2 s while they type; the indicator expires on its own)
  function typing(on) {
    if (!onTicket || !socket) return;
    const now = Date.now();
    if (on && now - typedAt.current < 2000) return;
    typedAt.current = on ? now : 0;
    socket.emit('typing', { ticketId: ticket._id, typing: on });
  }

  function submit(e) {
    e.preventDefault();
    run(async () => {
      typing(false);
      try {
        const r = await api(`/tickets/${ticket._id}/comments`, {
          method: 'POST',
          body: { text, internal: onTicket && internal, expectedUpdatedAt: ticket.updatedAt },
        });
        setText('');
        setInternal(false);
        setStale(false);
        onPosted(r.comments || [], !(onTicket && internal));
      } catch (err) {
        if (err.status === 409 && err.body && err.body.ticket) {
          setStale(true);
          return;
        }
        throw err;
      }
    });
  }

  let hint = null;
  if (!mayPost) {
    if (isCreator) hint = 'The assigned moderator opens the conversation; you can reply once they have written.';
    else if (staff) hint = 'Only the assigned moderator or an admin can comment on this ticket.';
  }

  return (
    <section className="card bg-base-100 border border-base-300 shadow-sm" aria-labelledby="comments-h">
      <div className="card-body p-4 sm:p-6 gap-3">
        <h2 id="comments-h" className="card-title text-lg">Conversation <span className="badge badge-sm">{comments.length}</span></h2>
        {comments.length === 0 && <p className="text-sm opacity-75">No messages yet.</p>}
        <ol className="flex flex-col gap-3" aria-live="polite" aria-relevant="additions" data-testid="comments">
          {comments.map((c) => {
            const mine = idOf(c.author) === user._id;
            const bubble = c.internal ? 'chat-bubble-warning' : mine ? 'chat-bubble-primary' : '';
            return (
              <li key={c._id} className={`chat ${mine ? 'chat-end' : 'chat-start'}`} data-internal={c.internal ? 'true' : undefined}>
                <div className="chat-header flex items-center gap-1 text-xs">
                  <Person person={c.author} /> <RoleBadge role={c.role} />
                  {c.internal && <span className="badge badge-warning badge-sm" data-testid="internal-note">Internal note</span>}
                  <time className="opacity-70" dateTime={c.createdAt} title={formatDate(c.createdAt)}>{timeAgo(c.createdAt)}</time>
                </div>
                <div className={`chat-bubble ${bubble}`}><Markdown>{c.text}</Markdown></div>
              </li>
            );
          })}
        </ol>
        {mayPost ? (
          <form onSubmit={submit} className="flex flex-col gap-2">
            <label htmlFor="comment-text" className="label font-medium">Your reply</label>
            <textarea id="comment-text" className={`textarea textarea-bordered w-full min-h-20 ${internal ? 'textarea-warning' : ''}`} maxLength={5000} required value={text} onChange={(e) => { setText(e.target.value); typing(true); }} onBlur={() => typing(false)} placeholder={internal ? 'A note for staff only: the requester never sees it' : 'Write a message (Markdown supported)'} />
            {staff && <CannedPicker onInsert={(body) => setText((t) => (t.trim() ? `${t}\n\n${body}` : body))} />}
            <Alert>{error}</Alert>
            <Stale stale={stale} onReload={() => { setStale(false); onReload(); }} />
            <div className="flex justify-between items-center gap-2">
              {onTicket ? (
                <label className="label cursor-pointer gap-2 text-sm">
                  <input type="checkbox" className="toggle toggle-warning toggle-sm" checked={internal} onChange={(e) => setInternal(e.target.checked)} />
                  Internal note (staff only)
                </label>
              ) : <span />}
              <button type="submit" className="btn btn-primary btn-sm" disabled={busy || !text.trim()}>
                {busy && <span className="loading loading-spinner loading-xs" aria-hidden="true" />}Send
              </button>
            </div>
          </form>
        ) : (
          hint && <p className="text-sm opacity-80" data-testid="comment-hint">{hint}</p>
        )}
      </div>
    </section>
  );
}

export default function TicketDetail() {
  const { id } = useParams();
  const { user, holdRoom } = useSession();
  const navigate = useNavigate();
  const [ticket, setTicket] = useState(null);
  const [comments, setComments] = useState([]);
  const [error, setError] = useState(null);
  const [live, setLive] = useState(null); // the last live change, announced
  const [changes, setChanges] = useState(0); // bumps the history's reload
  useTitle(ticket ? ticket.title : 'Ticket');

  const load = useCallback(async () => {
    try {
      const r = await api(`/tickets/${id}`);
      const { comments: cs, ...t } = r.ticket;
      setTicket(t);
      setComments(cs || []);
      setError(null);
    } catch (e) {
      setError(e.status === 404 ? 'Ticket not found (it does not exist or you may not see it).' : e.message);
    }
  }, [id]);

  useEffect(() => { setTicket(null); load(); }, [load]);
  useEffect(() => holdRoom(id), [id, holdRoom]);
  // after a reconnect the room is joined again; catch what was missed
  useReconnect(load);

  const addComments = useCallback((list) => {
    setComments((cur) => {
      const seen = new Map(cur.map((c) => [c._id, c]));
      for (const c of list) seen.set(c._id, c);
      return [...seen.values()].sort((a, b) => String(a.createdAt).localeCompare(String(b.createdAt)));
    });
  }, []);
  // a public comment moved the ticket's updatedAt to its createdAt: what
  // this page has seen, so the next reply's precondition includes it
  const seen = useCallback((at) => {
    setTicket((t) => t && at && String(at) > String(t.updatedAt) ? { ...t, updatedAt: at } : t);
  }, []);
  const posted = useCallback((list, isPublic) => {
    addComments(list);
    if (isPublic && list.length) seen(list[list.length - 1].createdAt);
  }, [addComments, seen]);

  // who else of the staff is here, and typing (staff only)
  const [viewers, setViewers] = useState([]);
  const [typists, setTypists] = useState({}); // id -> {username, until}
  useSocketEvent('ticket_viewers', (ev) => {
    if (ev && ev.ticketId === id) setViewers((ev.viewers || []).filter((v) => v._id !== user._id));
  });
  useSocketEvent('user_typing', (ev) => {
    if (!ev || ev.ticketId !== id || !ev.user) return;
    setTypists((cur) => {
      const next = { ...cur };
      if (ev.typing) next[ev.user._id] = { username: ev.user.username, until: Date.now() + 5000 };
      else delete next[ev.user._id];
      return next;
    });
  });
  useEffect(() => {
    if (Object.keys(typists).length === 0) return undefined;
    const t = setTimeout(() => {
      const now = Date.now();
      setTypists((cur) => Object.fromEntries(Object.entries(cur).filter(([, v]) => v.until > now)));
    }, 1000);
    return () => clearTimeout(t);
  }, [typists]);

  useSocketEvent('comment_added', (ev) => {
    if (ev && ev.ticketId === id && ev.comment) {
      addComments([ev.comment]);
      if (!ev.comment.internal) seen(ev.comment.createdAt);
      setLive(`New ${ev.comment.internal ? 'internal note' : 'message'} from ${ev.comment.author?.username || 'someone'}`);
    }
  });
  useSocketEvent('status_updated', (ev) => {
    if (ev && ev.ticketId === id) {
      setTicket((t) => t && { ...t, status: ev.status });
      setLive(`Status changed to ${ev.status}`);
      setChanges((n) => n + 1);
    }
  });
  // taken from me (reassigned, demoted): the page says it is gone
  useSocketEvent('room_left', (ev) => {
    if (ev && ev.ticketId === id) load();
  });
  useSocketEvent('ticket_updated', (ev) => {
    if (!ev || ev.ticketId !== id) return;
    const { ticketId, ...rest } = ev;
    setTicket((t) => t && { ...t, ...rest });
    setLive(rest.assignedTo ? `Assigned to ${rest.assignedTo.username}` : 'assignedTo' in rest ? 'Handed back' : 'AI triage finished');
    setChanges((n) => n + 1);
    // the room event carries no explanation nor triage provenance (the
    // creator is in the room too); staff read them with the ticket
    if (isStaff(user)) load();
  });

  if (error) {
    return (
      <div className="flex flex-col gap-4">
        <Alert>{error}</Alert>
        <Link className="link" to="/">← Back to tickets</Link>
      </div>
    );
  }
  if (!ticket) return <Spinner label="Loading ticket" />;

  const staff = isStaff(user);
  const triaged = Boolean(ticket.summary || ticket.priority);
  return (
    <article className="flex flex-col gap-4" aria-labelledby="ticket-h">
      <Link className="link link-hover text-sm w-fit" to="/">← Back to tickets</Link>
      <PageTitle
        sub={<>Filed {formatDate(ticket.createdAt)} · updated {timeAgo(ticket.updatedAt)}</>}
        actions={canChangeStatus(user, ticket) ? (
          <div className="flex items-center gap-2">
            <span className="text-sm font-medium" aria-hidden="true">Status</span>
            <StatusSelect id="ticket-status" ticket={ticket} onChanged={(t) => { setTicket((cur) => ({ ...cur, status: t.status, updatedAt: t.updatedAt || cur.updatedAt })); setChanges((n) => n + 1); }} />
            <span className="text-sm font-medium" aria-hidden="true">Priority</span>
            <PrioritySelect id="ticket-priority" ticket={ticket} onChanged={(t) => { setTicket((cur) => ({ ...cur, priority: t.priority, deadline: t.deadline, sla: t.sla, updatedAt: t.updatedAt || cur.updatedAt })); setChanges((n) => n + 1); }} />
          </div>
        ) : null}
      >
        <span id="ticket-h" className="break-words">{ticket.title}</span>
      </PageTitle>
      <p className="sr-only" aria-live="polite">{live}</p>
      {staff && viewers.length > 0 && (
        <p className="text-sm opacity-80" data-testid="viewers">
          Also viewing: {viewers.map((v) => v.username).join(', ')}
          {Object.keys(typists).length > 0 && (
            <span className="ml-2 italic" data-testid="typing">
              {Object.values(typists).map((v) => v.username).join(', ')} {Object.keys(typists).length > 1 ? 'are' : 'is'} typing…
            </span>
          )}
        </p>
      )}

      <div className="flex flex-wrap gap-2 items-center" data-testid="ticket-badges">
        <StatusBadge status={ticket.status} />
        <PriorityBadge priority={ticket.priority} />
        <SlaBadge ticket={ticket} />
      </div>

      <div className="grid gap-4 lg:grid-cols-3">
        <div className="lg:col-span-2 flex flex-col gap-4 min-w-0">
          <section className="card bg-base-100 border border-base-300 shadow-sm" aria-labelledby="desc-h">
            <div className="card-body p-4 sm:p-6 gap-2">
              <h2 id="desc-h" className="card-title text-lg">Description</h2>
              <p className="whitespace-pre-wrap break-words text-sm">{ticket.description}</p>
            </div>
          </section>

          <section className="card bg-base-100 border border-base-300 shadow-sm" aria-labelledby="ai-h" data-testid="triage">
            <div className="card-body p-4 sm:p-6 gap-3">
              <h2 id="ai-h" className="card-title text-lg">AI triage</h2>
              {!triaged ? (
                <p className="flex items-center gap-2 text-sm" data-testid="triage-pending">
                  <span className="loading loading-dots loading-sm" aria-hidden="true" /> The assistant is analysing this ticket; the result appears here live.
                </p>
              ) : (
                <>
                  <div>
                    <h3 className="font-semibold text-sm">Summary</h3>
                    <p className="text-sm" data-testid="summary">{ticket.summary || '—'}</p>
                  </div>
                  <div className="flex flex-wrap gap-6">
                    <div>
                      <h3 className="font-semibold text-sm mb-1">Priority</h3>
                      <PriorityBadge priority={ticket.priority} />
                    </div>
                    <div>
                      <h3 className="font-semibold text-sm mb-1">Related skills</h3>
                      <Skills skills={ticket.relatedSkills} />
                    </div>
                  </div>
                  {ticket.helpfulNotes && (
                    <div data-testid="notes">
                      <h3 className="font-semibold text-sm mb-1">Helpful notes</h3>
                      <Markdown>{ticket.helpfulNotes}</Markdown>
                    </div>
                  )}
                  {ticket.triage && (
                    <p className="text-xs opacity-75">
                      Triaged by {ticket.triage.provider}{ticket.triage.model ? ` (${ticket.triage.model})` : ''}
                      {ticket.triage.fallback ? ' as a fallback after the AI provider failed' : ''}
                      {ticket.triage.at ? `, ${timeAgo(ticket.triage.at)}` : ''}
                    </p>
                  )}
                </>
              )}
            </div>
          </section>

          {staff && (
            <section className="card bg-base-100 border border-base-300 shadow-sm" aria-labelledby="assign-h">
              <div className="card-body p-4 sm:p-6 gap-2">
                <h2 id="assign-h" className="card-title text-lg">Why this assignment</h2>
                <Assignment assignment={ticket.assignment} assignedTo={ticket.assignedTo} />
              </div>
            </section>
          )}
          <Comments ticket={ticket} comments={comments} onPosted={posted} user={user} onReload={load} />
        </div>

        <aside className="flex flex-col gap-4 min-w-0" aria-label="Ticket details">
          <section className="card bg-base-100 border border-base-300 shadow-sm">
            <div className="card-body p-4 gap-2 text-sm">
              <h2 className="card-title text-base">People</h2>
              <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-2 items-center">
                <dt className="opacity-75">Created by</dt>
                <dd className="min-w-0"><Person person={ticket.createdBy} /></dd>
                <dt className="opacity-75">Assigned to</dt>
                <dd className="min-w-0" data-testid="assigned-to"><Person person={ticket.assignedTo} /></dd>
              </dl>
              {canSetAssignee(user, ticket) && (
                <AssigneeControl
                  user={user}
                  ticket={ticket}
                  onChanged={(t, message) => {
                    if (!t) { navigate('/'); return; }
                    setTicket((cur) => ({ ...cur, ...t }));
                    setLive(message);
                    setChanges((n) => n + 1);
                  }}
                />
              )}
            </div>
          </section>
          {staff && ticket.triage && ticket.triage.error && (
            <Alert kind="warning">AI provider error: {ticket.triage.error}</Alert>
          )}
          <HistoryTimeline ticketId={id} refreshKey={changes} />
        </aside>
      </div>
    </article>
  );
}
