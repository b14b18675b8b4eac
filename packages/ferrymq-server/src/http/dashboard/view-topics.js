// Topics: retained values matching a pattern (in the URL) and the durable subscriptions with
// the messages waiting in their queues.
import { api, el, enc, fmtTime, href, previewText, statusLine, table } from './util.js';

const DEFAULT_PATTERN = '**';
const TOPICS_LIMIT = 200;
const VALUE_PREVIEW_BYTES = 200;

export async function renderTopics(root, route) {
  const pattern = route.params.get('pattern') || DEFAULT_PATTERN;
  const status = statusLine('topics-status');
  const input = el('input', {
    id: 'topic-pattern',
    type: 'search',
    value: pattern,
    'aria-label': 'topic pattern',
    placeholder: 'a/b, a/, a/*/c, a/**',
  });
  const form = el(
    'form',
    {
      class: 'toolbar',
      role: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        location.hash = href(['topics'], { pattern: input.value.trim() || DEFAULT_PATTERN });
      },
    },
    el('h2', {}, 'Retained values'),
    input,
    el('button', { type: 'submit' }, 'Show'),
  );
  const retained = el('div');
  const subs = el('section', {}, el('h2', {}, 'Durable subscriptions'));
  root.append(form, status.node, retained, subs);
  const [t, s] = await Promise.allSettled([
    api(
      'GET',
      `/v1/topics?pattern=${enc(pattern)}&limit=${TOPICS_LIMIT}&previewBytes=${VALUE_PREVIEW_BYTES}`,
    ),
    api('GET', '/v1/subscriptions'),
  ]);
  if (t.status === 'fulfilled') {
    retained.replaceChildren(
      table(
        'topics',
        ['topic', ['seq', 'n'], 'published', 'value'],
        t.value.topics.map((x) =>
          el(
            'tr',
            { 'data-topic': x.topic },
            el('td', { class: 'mono' }, x.topic),
            el('td', { class: 'n' }, x.seq),
            el('td', {}, fmtTime(x.publishedAt)),
            el(
              'td',
              { class: 'mono clip value', title: previewText(x.value) },
              previewText(x.value),
            ),
          ),
        ),
        'no retained value matches',
      ),
      t.value.more
        ? el('p', { class: 'muted' }, `first ${TOPICS_LIMIT} shown: narrow the pattern`)
        : '',
    );
  } else status.fail(t.reason);
  if (s.status === 'fulfilled') {
    subs.append(
      table(
        'subscriptions',
        [
          'name',
          'pattern',
          'queue',
          ['waiting', 'n'],
          ['dead', 'n'],
          ['consumers', 'n'],
          'created',
        ],
        s.value.subscriptions.map((x) =>
          el(
            'tr',
            { 'data-subscription': x.name },
            el('td', {}, x.name),
            el('td', { class: 'mono' }, x.pattern),
            el('td', {}, el('a', { href: href(['queues', x.queue]) }, x.queue)),
            el('td', { class: 'n' }, x.depth),
            el('td', { class: 'n' }, x.dead),
            el('td', { class: 'n' }, x.consumers),
            el('td', {}, fmtTime(x.createdAt)),
          ),
        ),
        'no durable subscriptions',
      ),
    );
  } else status.fail(s.reason);
}
