import { lazy, StrictMode, Suspense } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter, Link, Navigate, Route, Routes, useLocation } from 'react-router-dom';
import './index.css';
import { SessionProvider, useSession } from './session.jsx';
import Layout from './components/Layout.jsx';
import { Login, Signup } from './pages/Auth.jsx';
import Tickets from './pages/Tickets.jsx';
import { Spinner } from './components/Bits.jsx';

// loaded on first use: the Markdown renderer and the admin pages
const TicketDetail = lazy(() => import('./pages/TicketDetail.jsx'));
const Apply = lazy(() => import('./pages/Apply.jsx'));
const AdminUsers = lazy(() => import('./pages/AdminUsers.jsx'));
const ModRequests = lazy(() => import('./pages/ModRequests.jsx'));
const Analytics = lazy(() => import('./pages/Analytics.jsx'));
const CannedResponses = lazy(() => import('./pages/CannedResponses.jsx'));
const ChangePassword = lazy(() => import('./pages/Account.jsx').then((m) => ({ default: m.ChangePassword })));
const ForgotPassword = lazy(() => import('./pages/Account.jsx').then((m) => ({ default: m.ForgotPassword })));
const ResetPassword = lazy(() => import('./pages/Account.jsx').then((m) => ({ default: m.ResetPassword })));

/* Signed-in pages; `roles` limits a page to those roles. */
function RequireAuth({ roles, children }) {
  const { user } = useSession();
  const location = useLocation();
  if (!user) return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  if (roles && !roles.includes(user.role)) {
    return (
      <div role="alert" className="alert alert-warning">
        <span>This page is for {roles.join(' and ')}s only. <Link className="link" to="/">Back to tickets</Link></span>
      </div>
    );
  }
  return children;
}

function GuestOnly({ children }) {
  const { user } = useSession();
  return user ? <Navigate to="/" replace /> : children;
}

function NotFound() {
  return (
    <div className="text-center py-16">
      <h1 className="text-2xl font-bold">Page not found</h1>
      <Link className="link font-medium" to="/">Back to tickets</Link>
    </div>
  );
}

function App() {
  return (
    <Routes>
      <Route path="/login" element={<GuestOnly><Login /></GuestOnly>} />
      <Route path="/signup" element={<GuestOnly><Signup /></GuestOnly>} />
      <Route path="/forgot" element={<GuestOnly><ForgotPassword /></GuestOnly>} />
      {/* from the reset mail: open signed in or not */}
      <Route path="/reset" element={<ResetPassword />} />
      <Route element={<RequireAuth><Layout /></RequireAuth>}>
        <Route index element={<Tickets />} />
        <Route path="tickets/:id" element={<TicketDetail />} />
        <Route path="apply" element={<Apply />} />
        <Route path="account" element={<ChangePassword />} />
        <Route path="admin/users" element={<RequireAuth roles={['admin']}><AdminUsers /></RequireAuth>} />
        <Route path="admin/requests" element={<RequireAuth roles={['admin']}><ModRequests /></RequireAuth>} />
        <Route path="admin/analytics" element={<RequireAuth roles={['admin']}><Analytics /></RequireAuth>} />
        <Route path="canned" element={<RequireAuth roles={['admin', 'moderator']}><CannedResponses /></RequireAuth>} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <BrowserRouter>
      <SessionProvider>
        <Suspense fallback={<Spinner />}>
          <App />
        </Suspense>
      </SessionProvider>
    </BrowserRouter>
  </StrictMode>,
);
