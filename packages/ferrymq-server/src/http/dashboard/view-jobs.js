// Jobs: search (id prefix or service), status filter, paging, and one job in detail (params,
// headers, progress, partial results, error, result) with retry and cancel. The search, page
// and open job live in the URL.
import {
  api,
  el,
  enc,
  facts,
  fmtTime,
  href,
  pretty,
  previewText,
  statusLine,
  table,
} from './util.js';

const PAGE_SIZE = 20;
const STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled', 'expired'];
const RETRYABLE = ['failed', 'cancelled', 'expired'];
const CANCELLABLE = ['queued', 'running'];

function resultText(j) {
  if (j.status === 'done')
    return typeof j.result === 'string' ? j.result : JSON.stringify(j.result);
  return j.error ? `${j.error.code}: ${j.error.message}` : '';
}

function previewBlock(title, previews) {
  return previews.map((p, i) => [
    el(
      'h4',
      {},
      previews.length > 1 ? `${title} ${i + 1}` : title,
      el(
        'small',
        { class: 'muted' },
        p.truncated ? ` first ${p.preview.length} of ${p.size} bytes` : '',
      ),
    ),
    el(
      'pre',
      { class: 'body' },
      p.encoding === 'utf8' ? pretty(p.preview) : `(base64) ${p.preview}`,
    ),
  ]);
}

async function jobPanel(route, id, status, reload) {
  const params = Object.fromEntries(route.params);
  delete params.job;
  const close = href(['jobs'], params);
  let d;
  try {
    d = await api('GET', `/v1/jobs/${enc(id)}/detail`);
  } catch (err) {
    return el(
      'aside',
      { id: 'job-detail', class: 'panel' },
      el('p', { class: 'status-line bad' }, String(err.message)),
      el('a', { href: close }, 'Close'),
    );
  }
  const j = d.job;
  const act = async (path, done) => {
    try {
      const r = await api('POST', path);
      status.ok(`${done}: now ${r.status}`);
    } catch (err) {
      status.fail(err);
    }
    await reload();
  };
  const progress = j.progress
    ? [j.progress.percent !== undefined ? `${j.progress.percent}%` : '', j.progress.message ?? '']
        .filter(Boolean)
        .join(' · ')
    : undefined;
  const headers = Object.entries(d.headers);
  return el(
    'aside',
    { id: 'job-detail', class: 'panel', 'aria-label': `job ${j.id}` },
    el('div', { class: 'panel-head' }, el('h3', {}, 'Job'), el('a', { href: close }, 'Close')),
    facts([
      ['id', el('span', { class: 'mono' }, j.id)],
      ['service', j.service],
      ['status', el('span', { class: `status ${j.status}`, id: 'job-status' }, j.status)],
      ['attempts', `${j.attempts} of ${d.maxAttempts}`],
      ['priority', String(j.priority)],
      ['durable', j.durable ? 'yes' : 'no'],
      ['created', fmtTime(j.createdAt)],
      ['started', fmtTime(j.startedAt)],
      ['finished', fmtTime(j.finishedAt)],
      ['progress', progress],
      ['error', j.error ? `${j.error.code}: ${j.error.message}` : undefined],
    ]),
    el(
      'div',
      { class: 'actions' },
      RETRYABLE.includes(j.status) &&
        el(
          'button',
          {
            type: 'button',
            'data-action': 'retry',
            onclick: () => act(`/v1/jobs/${enc(j.id)}/retry`, 'retried'),
          },
          'Retry',
        ),
      CANCELLABLE.includes(j.status) &&
        el(
          'button',
          {
            type: 'button',
            class: 'danger',
            'data-action': 'cancel',
            onclick: () => act(`/v1/jobs/${enc(j.id)}/cancel`, 'cancel asked'),
          },
          'Cancel',
        ),
    ),
    previewBlock('Params', d.params),
    headers.length > 0 && [
      el('h4', {}, 'Headers'),
      table(
        'job-headers',
        ['header', 'value'],
        headers.map(([k, v]) =>
          el('tr', {}, el('td', { class: 'mono' }, k), el('td', { class: 'mono' }, v)),
        ),
      ),
    ],
    j.status === 'done' && [
      el('h4', {}, 'Result'),
      el(
        'pre',
        { class: 'body', id: 'job-result' },
        typeof j.result === 'string' ? j.result : JSON.stringify(j.result, null, 2),
      ),
    ],
    d.partials.length > 0 && [
      el('h4', {}, `Partial results (${j.partials})`),
      el(
        'ol',
        { class: 'partials' },
        d.partials.map((p) =>
          el('li', { value: p.seq }, el('code', {}, p.frames.map(previewText).join(' | '))),
        ),
      ),
    ],
  );
}

export async function renderJobs(root, route) {
  const p = route.params;
  const offset = Math.max(0, Number.parseInt(p.get('offset') ?? '0', 10) || 0);
  const status = statusLine('jobs-status');
  const q = el('input', {
    id: 'job-search',
    name: 'q',
    type: 'search',
    value: p.get('q') ?? '',
    placeholder: 'job id or service',
    'aria-label': 'search jobs by id prefix or service',
    maxLength: 200,
  });
  const st = el(
    'select',
    { id: 'job-status-filter', name: 'status', 'aria-label': 'status' },
    el('option', { value: '' }, 'any status'),
    STATUSES.map((s) => el('option', { value: s, selected: p.get('status') === s }, s)),
  );
  const form = el(
    'form',
    {
      class: 'toolbar',
      role: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        location.hash = href(['jobs'], { q: q.value.trim(), status: st.value });
      },
    },
    el('h2', {}, 'Jobs'),
    q,
    st,
    el('button', { type: 'submit' }, 'Search'),
  );
  const holder = el('div');
  root.append(form, status.node, holder);
  let alive = true;

  const load = async () => {
    const qs = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(offset) });
    if (p.get('q')) qs.set('q', p.get('q'));
    if (STATUSES.includes(p.get('status'))) qs.set('status', p.get('status'));
    let page;
    try {
      page = await api('GET', `/v1/jobs/search?${qs}`);
    } catch (err) {
      if (alive) status.fail(err);
      return;
    }
    const open = p.get('job');
    const base = Object.fromEntries(p);
    delete base.job;
    const rows = page.jobs.map((j) =>
      el(
        'tr',
        { 'data-job': j.id, class: j.id === open ? 'selected' : '' },
        el(
          'td',
          { class: 'mono' },
          el('a', { href: href(['jobs'], { ...base, job: j.id }) }, j.id.slice(0, 12)),
        ),
        el('td', {}, j.service),
        el('td', {}, el('span', { class: `status ${j.status}` }, j.status)),
        el('td', { class: 'n' }, j.attempts),
        el('td', {}, fmtTime(j.createdAt)),
        el('td', { class: 'mono clip', title: resultText(j) }, resultText(j)),
      ),
    );
    const go = (o) => () => {
      location.hash = href(['jobs'], { ...base, offset: o > 0 ? String(o) : undefined });
    };
    const pager = el(
      'div',
      { class: 'pager' },
      el(
        'button',
        {
          type: 'button',
          'data-page': 'prev',
          disabled: offset === 0,
          onclick: go(Math.max(0, offset - PAGE_SIZE)),
        },
        'Previous',
      ),
      el(
        'span',
        { class: 'muted', id: 'page-info' },
        page.jobs.length ? `${offset + 1}–${offset + page.jobs.length}` : 'none',
      ),
      el(
        'button',
        {
          type: 'button',
          'data-page': 'next',
          disabled: !page.more,
          onclick: go(offset + PAGE_SIZE),
        },
        'Next',
      ),
      el(
        'button',
        { type: 'button', 'data-action': 'refresh', onclick: () => void load() },
        'Refresh',
      ),
    );
    const detail = open ? await jobPanel(route, open, status, load) : null;
    if (!alive) return;
    holder.replaceChildren(
      el(
        'div',
        { class: detail ? 'split' : '' },
        el(
          'div',
          {},
          table(
            'jobs',
            ['job', 'service', 'status', ['attempts', 'n'], 'created', 'result'],
            rows,
            'no jobs match',
          ),
          pager,
        ),
        detail,
      ),
    );
  };
  await load();
  return () => {
    alive = false;
  };
}
