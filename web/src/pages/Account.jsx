// Passwords: change one's own (signed in), ask for a reset link (signed
// out), and set a new password from that link (/reset?token=...).
//
// A change answers with a new token for this session (every other session
// of the account ends, server-side); a reset ends every session, this one
// too, so the page signs out here and asks for a login.

import { useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { api } from '../api.js';
import { useSession } from '../session.jsx';
import { Alert, PageTitle, useAction, useTitle } from '../components/Bits.jsx';
import { AuthCard, Field } from './Auth.jsx';

const PASSWORD_HINT = '8 to 128 characters';

export function ChangePassword() {
  useTitle('Change password');
  const { signIn } = useSession();
  const [form, setForm] = useState({ currentPassword: '', newPassword: '', confirm: '' });
  const [done, setDone] = useState(null);
  const { busy, error, run } = useAction();
  const [mismatch, setMismatch] = useState(null);

  function submit(e) {
    e.preventDefault();
    setDone(null);
    setMismatch(null);
    if (form.newPassword !== form.confirm) {
      setMismatch('The two new passwords differ.');
      return;
    }
    run(async () => {
      const r = await api('/auth/password', {
        method: 'POST',
        body: { currentPassword: form.currentPassword, newPassword: form.newPassword },
      });
      signIn(r.user, r.token);
      setForm({ currentPassword: '', newPassword: '', confirm: '' });
      setDone('Password changed. Every other session of your account was signed out.');
    });
  }

  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  return (
    <section className="max-w-md">
      <PageTitle sub="Other devices and browsers signed in to your account are signed out.">Change password</PageTitle>
      <form onSubmit={submit} className="card bg-base-100 border border-base-300 card-body flex flex-col gap-2" noValidate>
        <Field id="currentPassword" label="Current password" type="password" autoComplete="current-password" required value={form.currentPassword} onChange={set('currentPassword')} />
        <Field id="newPassword" label="New password" type="password" autoComplete="new-password" required value={form.newPassword} onChange={set('newPassword')} hint={PASSWORD_HINT} />
        <Field id="confirmPassword" label="New password again" type="password" autoComplete="new-password" required value={form.confirm} onChange={set('confirm')} />
        <Alert>{mismatch || error}</Alert>
        <Alert kind="success">{done}</Alert>
        <button type="submit" className="btn btn-primary mt-2" disabled={busy}>
          {busy && <span className="loading loading-spinner loading-sm" aria-hidden="true" />}Change password
        </button>
      </form>
    </section>
  );
}

export function ForgotPassword() {
  useTitle('Forgot password');
  const [email, setEmail] = useState('');
  const [sent, setSent] = useState(null);
  const { busy, error, run } = useAction();

  function submit(e) {
    e.preventDefault();
    setSent(null);
    run(async () => {
      const r = await api('/auth/password-reset', { method: 'POST', body: { email: email.trim() } });
      setSent(r.message);
    });
  }

  return (
    <AuthCard title="Forgot password" footer={<><Link className="link font-medium" to="/login">Back to log in</Link></>}>
      <p className="text-sm">Enter the email of your account: we send it a link to choose a new password (valid for one hour).</p>
      <form onSubmit={submit} className="flex flex-col gap-2" noValidate>
        <Field id="email" label="Email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        <Alert>{error}</Alert>
        <Alert kind="success">{sent}</Alert>
        <button type="submit" className="btn btn-primary mt-2" disabled={busy}>
          {busy && <span className="loading loading-spinner loading-sm" aria-hidden="true" />}Send reset link
        </button>
      </form>
    </AuthCard>
  );
}

export function ResetPassword() {
  useTitle('Choose a new password');
  const [params] = useSearchParams();
  const token = params.get('token') || '';
  const { user, forget } = useSession();
  const navigate = useNavigate();
  const [form, setForm] = useState({ password: '', confirm: '' });
  const [mismatch, setMismatch] = useState(null);
  const { busy, error, run } = useAction();

  function submit(e) {
    e.preventDefault();
    setMismatch(null);
    if (form.password !== form.confirm) {
      setMismatch('The two passwords differ.');
      return;
    }
    run(async () => {
      const r = await api('/auth/password-reset/confirm', { method: 'POST', body: { token, password: form.password } });
      // every session ended, this browser's too: log in with the new one
      if (user) forget();
      navigate('/login', { replace: true, state: { reset: r.message } });
    });
  }

  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  return (
    <AuthCard title="Choose a new password" footer={<><Link className="link font-medium" to="/forgot">Ask for a new link</Link></>}>
      {!token && <Alert>This page needs the link from the reset email.</Alert>}
      <form onSubmit={submit} className="flex flex-col gap-2" noValidate>
        <Field id="password" label="New password" type="password" autoComplete="new-password" required value={form.password} onChange={set('password')} hint={PASSWORD_HINT} />
        <Field id="confirmPassword" label="New password again" type="password" autoComplete="new-password" required value={form.confirm} onChange={set('confirm')} />
        <Alert>{mismatch || error}</Alert>
        <button type="submit" className="btn btn-primary mt-2" disabled={busy || !token}>
          {busy && <span className="loading loading-spinner loading-sm" aria-hidden="true" />}Set new password
        </button>
      </form>
    </AuthCard>
  );
}
