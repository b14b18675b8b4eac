/** 0001: queues, messages (state 0 ready, 1 leased, 2 scheduled, 3 dead), idempotency keys. */
export const MIGRATION_0001_INIT = `
CREATE TABLE queues (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

CREATE TABLE messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  queue_id INTEGER NOT NULL REFERENCES queues(id),
  state INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  not_before INTEGER NOT NULL,
  expires_at INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  enqueued_at INTEGER NOT NULL,
  size INTEGER NOT NULL,
  nframes INTEGER NOT NULL,
  headers TEXT,
  dedup_key TEXT,
  dead_reason TEXT,
  body BLOB NOT NULL
);

CREATE INDEX messages_ready ON messages(queue_id, priority DESC, id) WHERE state = 0;
CREATE INDEX messages_queue ON messages(queue_id, id);
CREATE INDEX messages_due ON messages(not_before) WHERE state = 2;
CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE idempotency (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  ids TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
) WITHOUT ROWID;

CREATE INDEX idempotency_expiry ON idempotency(expires_at);
`;
