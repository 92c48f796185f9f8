// Small display helpers shared by the pages.

export function formatDate(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

export function timeAgo(iso) {
  if (!iso) return '';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.round(h / 24);
  return `${d} d ago`;
}

export function hours(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (v < 1) return `${Math.round(v * 60)} min`;
  return `${Math.round(v * 10) / 10} h`;
}

export function isStaff(user) {
  return user && (user.role === 'admin' || user.role === 'moderator');
}

export function idOf(v) {
  if (!v) return null;
  return typeof v === 'string' ? v : v._id;
}
