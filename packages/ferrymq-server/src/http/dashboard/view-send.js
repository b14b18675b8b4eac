// Send: a form to send one message to a queue and a form to submit a durable job to a service.
// Input is checked here for a quick answer; the gateway checks it again and its coded error
// is shown as it comes.
import { api, el, enc, href, statusLine } from './util.js';

const NAME_PATTERN = '[A-Za-z0-9._:\\-]{1,200}';

function field(label, input, hint) {
  return el(
    'label',
    { class: 'field' },
    el('span', {}, label),
    input,
    hint && el('small', { class: 'muted' }, hint),
  );
}

const num = (id, min, max) =>
  el('input', { id, name: id, type: 'number', min, max, step: 1, inputMode: 'numeric' });

/** `k=v` per line → {k: v}; throws on a line without `=`. */
function parseHeaders(text) {
  const out = {};
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const i = t.indexOf('=');
    if (i <= 0) throw new Error(`header line "${t}" is not key=value`);
    out[t.slice(0, i).trim()] = t.slice(i + 1).trim();
  }
  return out;
}

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${err.message}`);
  }
}

/** Sets the optional integer fields that are filled in. */
function addNumbers(target, inputs) {
  for (const [key, input] of Object.entries(inputs)) {
    if (input.value !== '') target[key] = Number(input.value);
  }
}

function messageForm(route) {
  const status = statusLine('send-status');
  const queue = el('input', {
    id: 'send-queue',
    name: 'queue',
    required: true,
    pattern: NAME_PATTERN,
    value: route.params.get('queue') ?? '',
    autocomplete: 'off',
  });
  const body = el('textarea', { id: 'send-body', name: 'body', rows: 6, spellcheck: false });
  const asJson = el('input', { id: 'send-json', name: 'json', type: 'checkbox' });
  const headers = el('textarea', {
    id: 'send-headers',
    name: 'headers',
    rows: 2,
    placeholder: 'key=value per line',
  });
  const priority = num('send-priority', 0, 255);
  const delayMs = num('send-delay', 0);
  const ttlMs = num('send-ttl', 1);
  const form = el(
    'form',
    {
      id: 'send-form',
      class: 'form',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const msg = asJson.checked
            ? { json: parseJson(body.value, 'the body') }
            : { body: body.value };
          const h = parseHeaders(headers.value);
          if (Object.keys(h).length) msg.headers = h;
          addNumbers(msg, { priority, delayMs, ttlMs });
          const name = queue.value.trim();
          const r = await api('POST', `/v1/queues/${enc(name)}/messages`, msg);
          status.ok(
            `stored as message ${r.id} in ${name}${r.duplicate ? ' (duplicate: not stored again)' : ''}`,
          );
          status.node.append(
            ' · ',
            el(
              'a',
              { href: href(['queues', name], { state: msg.delayMs ? 'scheduled' : 'ready' }) },
              'browse',
            ),
          );
        } catch (err) {
          status.fail(err);
        }
      },
    },
    el('h2', {}, 'Send a message'),
    field('Queue', queue, 'created on first use'),
    field('Body', body),
    el('label', { class: 'check' }, asJson, ' body is JSON'),
    field('Headers', headers),
    el(
      'div',
      { class: 'row' },
      field('Priority', priority, '0–255'),
      field('Delay, ms', delayMs),
      field('TTL, ms', ttlMs),
    ),
    el('button', { type: 'submit' }, 'Send'),
    status.node,
  );
  return form;
}

function jobForm(route) {
  const status = statusLine('submit-status');
  const service = el('input', {
    id: 'job-service',
    name: 'service',
    required: true,
    pattern: NAME_PATTERN,
    value: route.params.get('service') ?? '',
    autocomplete: 'off',
  });
  const params = el('textarea', {
    id: 'job-params',
    name: 'params',
    rows: 6,
    spellcheck: false,
    placeholder: '{"any": "JSON"}',
  });
  const headers = el('textarea', {
    id: 'job-headers-input',
    name: 'headers',
    rows: 2,
    placeholder: 'key=value per line',
  });
  const priority = num('job-priority', 0, 255);
  const delayMs = num('job-delay', 0);
  const maxAttempts = num('job-max-attempts', 1, 1000);
  const form = el(
    'form',
    {
      id: 'submit-form',
      class: 'form',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const job = {};
          if (params.value.trim() !== '') job.params = parseJson(params.value, 'params');
          const h = parseHeaders(headers.value);
          if (Object.keys(h).length) job.headers = h;
          addNumbers(job, { priority, delayMs, maxAttempts });
          const name = service.value.trim();
          const r = await api('POST', `/v1/services/${enc(name)}/jobs`, job);
          status.ok(`job ${r.id} ${r.status}`);
          status.node.append(
            ' · ',
            el('a', { href: href(['jobs'], { job: r.id }), id: 'submitted-job' }, 'open'),
          );
        } catch (err) {
          status.fail(err);
        }
      },
    },
    el('h2', {}, 'Submit a job'),
    field('Service', service),
    field('Params (JSON)', params, 'empty: null'),
    field('Headers', headers),
    el(
      'div',
      { class: 'row' },
      field('Priority', priority, '0–255'),
      field('Delay, ms', delayMs),
      field('Max attempts', maxAttempts),
    ),
    el('button', { type: 'submit' }, 'Submit'),
    status.node,
  );
  return form;
}

export function renderSend(root, route) {
  root.append(el('div', { class: 'two forms' }, messageForm(route), jobForm(route)));
}
