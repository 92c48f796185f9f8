// Login and signup.  The server's own error text is shown (wrong
// credentials, lockout, duplicate account, validation).

import { useState } from 'react';
import { Link, useLocation, useNavigate } from 'react-router-dom';
import { api } from '../api.js';
import { useSession } from '../session.jsx';
import { Alert, Logo, useAction, useTitle } from '../components/Bits.jsx';

export function AuthCard({ title, children, footer }) {
  return (
    <div className="min-h-screen bg-base-200 flex items-center justify-center p-4">
      <main id="main" className="card w-full max-w-md bg-base-100 shadow-xl border border-base-300">
        <div className="card-body">
          <Logo className="h-12 w-12 mx-auto" />
          <h1 className="card-title justify-center text-2xl">{title}</h1>
          <p className="text-center text-sm opacity-75">Ticket Assistant — AI-triaged support tickets</p>
          {children}
          <div className="text-center text-sm mt-2">{footer}</div>
        </div>
      </main>
    </div>
  );
}

export function Field({ id, label, hint, ...props }) {
  return (
    <div className="form-control w-full">
      <label htmlFor={id} className="label"><span className="label-text font-medium">{label}</span></label>
      <input id={id} name={id} className="input input-bordered w-full" aria-describedby={hint ? `${id}-hint` : undefined} {...props} />
      {hint && <p id={`${id}-hint`} className="text-xs opacity-70 mt-1">{hint}</p>}
    </div>
  );
}

export function Login() {
  useTitle('Log in');
  const { signIn, notice } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const [form, setForm] = useState({ identifier: '', password: '' });
  const { busy, error, run } = useAction();

  function submit(e) {
    e.preventDefault();
    run(async () => {
      const r = await api('/auth/login', { method: 'POST', body: form });
      signIn(r.user, r.token);
      navigate(location.state?.from || '/', { replace: true });
    });
  }

  return (
    <AuthCard title="Log in" footer={<>No account yet? <Link className="link font-medium" to="/signup">Sign up</Link></>}>
      {notice && <Alert kind="warning">{notice}</Alert>}
      {location.state?.reset && <Alert kind="success">{location.state.reset}</Alert>}
      <form onSubmit={submit} className="flex flex-col gap-2" noValidate>
        <Field id="identifier" label="Email or username" autoComplete="username" required value={form.identifier} onChange={(e) => setForm({ ...form, identifier: e.target.value })} />
        <Field id="password" label="Password" type="password" autoComplete="current-password" required value={form.password} onChange={(e) => setForm({ ...form, password: e.target.value })} />
        <div className="text-right text-sm"><Link className="link" to="/forgot">Forgot password?</Link></div>
        <Alert>{error}</Alert>
        <button type="submit" className="btn btn-primary mt-2" disabled={busy}>
          {busy && <span className="loading loading-spinner loading-sm" aria-hidden="true" />}Log in
        </button>
      </form>
    </AuthCard>
  );
}

export function Signup() {
  useTitle('Sign up');
  const { signIn } = useSession();
  const navigate = useNavigate();
  const [form, setForm] = useState({ username: '', email: '', password: '', skills: '' });
  const { busy, error, run } = useAction();

  function submit(e) {
    e.preventDefault();
    const skills = form.skills.split(',').map((s) => s.trim()).filter(Boolean);
    const body = { username: form.username.trim(), email: form.email.trim(), password: form.password };
    if (skills.length) body.skills = skills;
    run(async () => {
      const r = await api('/auth/signup', { method: 'POST', body });
      signIn(r.user, r.token);
      navigate('/', { replace: true });
    });
  }

  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  return (
    <AuthCard title="Create an account" footer={<>Already have an account? <Link className="link font-medium" to="/login">Log in</Link></>}>
      <form onSubmit={submit} className="flex flex-col gap-2" noValidate>
        <Field id="username" label="Username" autoComplete="username" required value={form.username} onChange={set('username')} hint="3–32 letters, digits, _ . or -" />
        <Field id="email" label="Email" type="email" autoComplete="email" required value={form.email} onChange={set('email')} />
        <Field id="password" label="Password" type="password" autoComplete="new-password" required value={form.password} onChange={set('password')} hint="At least 8 characters" />
        <Field id="skills" label="Skills (optional)" value={form.skills} onChange={set('skills')} hint="Comma-separated, e.g. react, billing, nginx" />
        <Alert>{error}</Alert>
        <button type="submit" className="btn btn-primary mt-2" disabled={busy}>
          {busy && <span className="loading loading-spinner loading-sm" aria-hidden="true" />}Sign up
        </button>
      </form>
    </AuthCard>
  );
}
