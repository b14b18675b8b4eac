// A queue's life cycle on its page: pause and resume its deliveries, delete it (a queue that
// still holds messages only with a second, explicit confirmation), and its policy: each key
// with the value in force and whether it was set at runtime; edit, drop one, reset all.
import { api, el, enc, href, statusLine, table } from './util.js';

const STATES = ['ready', 'leased', 'scheduled', 'dead'];
/** The policy keys in the order shown (the broker's list; unknown ones come after). */
const POLICY_KEYS = [
  'ackTimeoutMs',
  'maxAttempts',
  'maxDepth',
  'maxBytes',
  'dedupWindowMs',
  'retryBaseMs',
  'retryMaxMs',
];
const WHOLE_NUMBER = /^-?\d+$/;

/** The outcome of a delete, shown by the queue list it navigates to. */
let flash = null;

/** The message of the last delete (once), for the queue list. */
export function takeDeleteFlash() {
  const f = flash;
  flash = null;
  return f;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * Pause / resume and delete of queue `name`: the node for the queue's action bar, and
 * `update(q)` to call with the queue's live stats (q undefined: not listed).
 */
export function lifecycleControls(name, status) {
  const q = `/v1/queues/${enc(name)}`;
  let paused = null;
  let busy = false;
  /** Live snapshots to skip after an action: one may have been taken before it. */
  let skipLive = 0;
  const state = el('span', { class: 'status', id: 'queue-state', 'aria-live': 'polite' }, '–');
  const toggle = el('button', { type: 'button', 'data-action': 'pause', disabled: true }, 'Pause');
  const notEmpty = el('div', { id: 'queue-delete', class: 'panel', hidden: true });

  const show = (p) => {
    paused = p;
    state.textContent = p ? 'paused' : 'delivering';
    state.className = p ? 'status paused' : 'status running';
    toggle.textContent = p ? 'Resume' : 'Pause';
    toggle.dataset.action = p ? 'resume' : 'pause';
    toggle.disabled = busy;
  };

  toggle.addEventListener('click', async () => {
    if (paused === null || busy) return;
    busy = true;
    toggle.disabled = true;
    try {
      const r = await api('POST', `${q}/${paused ? 'resume' : 'pause'}`);
      skipLive = 1;
      status.ok(
        r.paused ? `${name} paused: messages are stored, not delivered` : `${name} resumed`,
      );
      busy = false;
      show(r.paused);
    } catch (err) {
      status.fail(err);
      busy = false;
      show(paused);
    }
  });

  const deleted = (r) => {
    flash = `queue ${r.deleted} deleted with ${plural(r.messages, 'message')}`;
    location.hash = href(['queues']);
  };

  /** 409 QUEUE_NOT_EMPTY: what it holds, and the forced delete behind a second confirm. */
  const offerForce = async (err) => {
    let held;
    try {
      held = await api('GET', q);
    } catch (e) {
      status.fail(e);
      return;
    }
    const n = STATES.reduce((sum, s) => sum + held[s], 0);
    const counts = STATES.map((s) => `${s} ${held[s]}`).join(', ');
    notEmpty.replaceChildren(
      el(
        'p',
        { class: 'status-line bad', role: 'alert' },
        `${err.code}: ${name} still holds ${plural(n, 'message')} (${counts}). ` +
          'Deleting it deletes them too; this cannot be undone.',
      ),
      el(
        'div',
        { class: 'actions' },
        el(
          'button',
          {
            type: 'button',
            class: 'danger',
            'data-action': 'delete-force',
            onclick: async () => {
              if (!confirm(`Delete queue ${name} and its ${plural(n, 'message')}?`)) return;
              try {
                deleted(await api('DELETE', `${q}?force=true`));
              } catch (e) {
                status.fail(e);
              }
            },
          },
          `Delete with its ${plural(n, 'message')}`,
        ),
        el(
          'button',
          {
            type: 'button',
            class: 'ghost',
            'data-action': 'delete-cancel',
            onclick: () => {
              notEmpty.hidden = true;
              notEmpty.replaceChildren();
            },
          },
          'Keep the queue',
        ),
      ),
    );
    notEmpty.hidden = false;
  };

  const del = el(
    'button',
    {
      type: 'button',
      class: 'danger',
      'data-action': 'delete-queue',
      onclick: async () => {
        if (!confirm(`Delete queue ${name}?`)) return;
        try {
          deleted(await api('DELETE', q));
        } catch (err) {
          if (err.code === 'QUEUE_NOT_EMPTY') await offerForce(err);
          else status.fail(err);
        }
      },
    },
    'Delete queue',
  );

  return {
    node: el('span', { class: 'actions', id: 'queue-lifecycle' }, state, toggle, del),
    notEmpty,
    update(stats) {
      if (busy) return;
      if (skipLive > 0) {
        skipLive--;
        return;
      }
      if (stats === undefined) {
        state.textContent = '–';
        toggle.disabled = true;
        return;
      }
      show(stats.paused === true);
    },
  };
}

/** The policy panel of queue `name`: `node`, and `load()` to (re)read it. */
export function policyPanel(name) {
  const base = `/v1/queues/${enc(name)}/policy`;
  const status = statusLine('policy-status');
  const holder = el('div');
  const node = el(
    'section',
    { id: 'queue-policy', class: 'panel', 'aria-label': `policy of ${name}` },
    el('h3', {}, 'Policy'),
    el(
      'p',
      { class: 'muted' },
      'Values set at runtime win over the config file (or the defaults) until dropped.',
    ),
    holder,
    status.node,
  );

  const change = async (patch, done) => {
    try {
      render(await api('PATCH', base, patch));
      status.ok(done);
    } catch (err) {
      status.fail(err);
    }
  };

  const row = (key, value, runtime) => {
    const input = el('input', {
      type: 'text',
      inputMode: 'numeric',
      value: String(value ?? ''),
      'aria-label': `${key} value`,
      'data-key': key,
      size: 14,
    });
    const save = () => {
      const text = input.value.trim();
      const n = Number(text);
      if (!WHOLE_NUMBER.test(text) || !Number.isSafeInteger(n)) {
        input.setAttribute('aria-invalid', 'true');
        status.fail(`${key} must be a whole number`);
        return;
      }
      input.removeAttribute('aria-invalid');
      void change({ [key]: n }, `${key} set to ${n} at runtime`);
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') save();
    });
    return el(
      'tr',
      { 'data-key': key, class: runtime ? 'runtime' : '' },
      el('td', { class: 'mono' }, key),
      el('td', {}, input),
      el('td', { class: 'source' }, runtime ? 'runtime' : 'config or default'),
      el(
        'td',
        {},
        el('button', { type: 'button', 'data-action': 'policy-set', onclick: save }, 'Set'),
        ' ',
        runtime &&
          el(
            'button',
            {
              type: 'button',
              class: 'ghost',
              'data-action': 'policy-drop',
              onclick: () =>
                change({ [key]: null }, `runtime ${key} dropped: the config applies again`),
            },
            'Drop runtime value',
          ),
      ),
    );
  };

  const render = (info) => {
    const keys = [
      ...POLICY_KEYS.filter((k) => Object.hasOwn(info.policy, k)),
      ...Object.keys(info.policy).filter((k) => !POLICY_KEYS.includes(k)),
    ];
    const runtime = Object.keys(info.overrides).length;
    holder.replaceChildren(
      table(
        'policy',
        ['key', 'value', 'set by', ''],
        keys.map((k) => row(k, info.policy[k], Object.hasOwn(info.overrides, k))),
      ),
      el(
        'div',
        { class: 'actions' },
        el(
          'button',
          {
            type: 'button',
            class: 'danger',
            'data-action': 'policy-reset',
            disabled: runtime === 0,
            onclick: async () => {
              if (!confirm(`Drop every runtime policy value of ${name}?`)) return;
              try {
                render(await api('DELETE', base));
                status.ok(`runtime policy of ${name} reset: the config applies`);
              } catch (err) {
                status.fail(err);
              }
            },
          },
          'Reset all',
        ),
        el('span', { class: 'muted', id: 'policy-runtime' }, `${runtime} set at runtime`),
      ),
    );
  };

  const load = async () => {
    try {
      render(await api('GET', base));
    } catch (err) {
      holder.replaceChildren();
      status.fail(err);
    }
  };
  return { node, load };
}
