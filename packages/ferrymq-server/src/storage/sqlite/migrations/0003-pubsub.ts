/** 0003: pub/sub — the publish sequence, retained values, durable subscriptions, confirmations. */
export const MIGRATION_0003_PUBSUB = `
CREATE TABLE pubsub_meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE retained (
  topic TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  published_at INTEGER NOT NULL,
  expires_at INTEGER,
  nframes INTEGER NOT NULL,
  body BLOB NOT NULL,
  headers TEXT
) WITHOUT ROWID;

CREATE INDEX retained_expiry ON retained(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE subscriptions (
  name TEXT PRIMARY KEY,
  pattern TEXT NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE confirmations (
  topic TEXT NOT NULL,
  node TEXT NOT NULL,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (topic, node)
) WITHOUT ROWID;
`;
