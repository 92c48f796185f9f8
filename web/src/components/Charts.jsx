// Dependency-free SVG charts for the analytics page.  Each chart is an
// image with a text description for screen readers, and the numbers are
// also printed next to the bars.

const COLORS = {
  primary: 'var(--color-primary)',
  secondary: 'var(--color-secondary)',
  success: 'var(--color-success)',
  warning: 'var(--color-warning)',
  error: 'var(--color-error)',
  info: 'var(--color-info)',
  neutral: 'var(--color-neutral)',
};

/* Horizontal bars: data = [{label, value, color}] */
export function BarChart({ title, data, unit = '' }) {
  const max = Math.max(1, ...data.map((d) => d.value || 0));
  const desc = data.map((d) => `${d.label}: ${d.value}${unit}`).join(', ');
  return (
    <div className="flex flex-col gap-2 w-full" data-chart={title} role="group" aria-label={title}>
      <h3 className="font-semibold text-sm">{title}</h3>
      <div role="img" aria-label={`${title}. ${desc}`} className="flex flex-col gap-1.5">
        {data.map((d) => (
          <div key={d.label} className="grid grid-cols-[7rem_1fr_3rem] items-center gap-2 text-xs" aria-hidden="true">
            <span className="truncate">{d.label}</span>
            <svg viewBox="0 0 100 10" preserveAspectRatio="none" className="h-4 w-full rounded bg-base-200">
              <rect x="0" y="0" height="10" width={(100 * (d.value || 0)) / max} fill={COLORS[d.color] || COLORS.primary} rx="1" />
            </svg>
            <span className="text-right tabular-nums">{d.value}{unit}</span>
          </div>
        ))}
      </div>
    </div>
  );
}

/* Created vs resolved per day: daily = [{date, created, resolved}] */
export function DailyChart({ daily }) {
  const W = 800;
  const H = 200;
  const pad = { l: 28, r: 8, t: 8, b: 22 };
  const n = Math.max(1, daily.length);
  const max = Math.max(1, ...daily.map((d) => Math.max(d.created || 0, d.resolved || 0)));
  const step = (W - pad.l - pad.r) / n;
  const bw = Math.max(1, step / 2 - 1);
  const y = (v) => H - pad.b - ((H - pad.t - pad.b) * v) / max;
  const totalC = daily.reduce((a, d) => a + (d.created || 0), 0);
  const totalR = daily.reduce((a, d) => a + (d.resolved || 0), 0);
  const ticks = [0, Math.ceil(max / 2), max].filter((v, i, a) => a.indexOf(v) === i);
  return (
    <div className="flex flex-col gap-2 w-full" data-chart="daily" role="group" aria-label="Created and resolved per day">
      <h3 className="font-semibold text-sm flex flex-wrap gap-x-4 gap-y-1 items-center">
        Created and resolved per day (last {daily.length} days, UTC)
        <span className="inline-flex items-center gap-1 font-normal text-xs"><span className="inline-block w-3 h-3 rounded-sm" style={{ background: COLORS.info }} aria-hidden="true" />Created ({totalC})</span>
        <span className="inline-flex items-center gap-1 font-normal text-xs"><span className="inline-block w-3 h-3 rounded-sm" style={{ background: COLORS.success }} aria-hidden="true" />Resolved ({totalR})</span>
      </h3>
      <svg viewBox={`0 0 ${W} ${H}`} className="w-full h-auto" role="img" aria-label={`Daily tickets: ${totalC} created and ${totalR} resolved over ${daily.length} days`}>
        {ticks.map((t) => (
          <g key={t}>
            <line x1={pad.l} x2={W - pad.r} y1={y(t)} y2={y(t)} stroke="currentColor" strokeOpacity="0.15" />
            <text x={pad.l - 4} y={y(t) + 3} fontSize="9" textAnchor="end" fill="currentColor">{t}</text>
          </g>
        ))}
        {daily.map((d, i) => {
          const x = pad.l + i * step;
          return (
            <g key={d.date}>
              <title>{`${d.date}: ${d.created} created, ${d.resolved} resolved`}</title>
              <rect x={x + 1} y={y(d.created || 0)} width={bw} height={H - pad.b - y(d.created || 0)} fill={COLORS.info} />
              <rect x={x + 1 + bw} y={y(d.resolved || 0)} width={bw} height={H - pad.b - y(d.resolved || 0)} fill={COLORS.success} />
              {((i % 7 === 0 && daily.length - 1 - i >= 4) || i === daily.length - 1) && (
                <text x={x + step / 2} y={H - 6} fontSize="9" textAnchor="middle" fill="currentColor">{String(d.date).slice(5)}</text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}
