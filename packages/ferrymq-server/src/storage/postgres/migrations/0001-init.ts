/**
 * 0001: every table of the PostgreSQL store — the SQLite store's four migrations in one, plus
 * what several brokers sharing one database need: `leased_by` on messages and jobs (the broker
 * holding the lease or run) and `nodes` (one row per broker, with its heartbeat).
 *
 * Times are milliseconds since the epoch (BIGINT), as in the SQLite store. Message states:
 * 0 ready, 1 leased, 2 scheduled, 3 dead.
 */
export const PG_MIGRATION_0001_INIT = `
CREATE TABLE queues (
  id BIGSERIAL PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
);

CREATE TABLE messages (
  id BIGSERIAL PRIMARY KEY,
  queue_id BIGINT NOT NULL,
  state SMALLINT NOT NULL,
  priority INTEGER NOT NULL,
  not_before BIGINT NOT NULL,
  expires_at BIGINT,
  attempts INTEGER NOT NULL DEFAULT 0,
  enqueued_at BIGINT NOT NULL,
  size INTEGER NOT NULL,
  nframes INTEGER NOT NULL,
  headers TEXT,
  dedup_key TEXT,
  dead_reason TEXT,
  leased_by TEXT,
  body BYTEA NOT NULL
);

CREATE INDEX messages_ready ON messages(queue_id, priority DESC, id) WHERE state = 0;
CREATE INDEX messages_queue ON messages(queue_id, id);
CREATE INDEX messages_due ON messages(not_before) WHERE state = 2;
CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX messages_leased ON messages(leased_by) WHERE state = 1;

CREATE TABLE idempotency (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  ids TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_expiry ON idempotency(expires_at);

CREATE TABLE queue_settings (
  queue_id BIGINT PRIMARY KEY,
  paused BOOLEAN NOT NULL DEFAULT FALSE,
  policy TEXT NOT NULL DEFAULT '{}',
  updated_at BIGINT NOT NULL
);

-- Jobs. leased_by: the node running the job (status running), NULL otherwise. A dedup key is
-- an idempotency row (scope 'j:<service>') claimed with INSERT ... ON CONFLICT, so two brokers
-- storing the same key at once store one job.
CREATE TABLE jobs (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  service TEXT NOT NULL,
  status TEXT NOT NULL,
  priority INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  not_before BIGINT NOT NULL,
  expires_at BIGINT,
  started_at BIGINT,
  finished_at BIGINT,
  retain_until BIGINT,
  nframes INTEGER NOT NULL,
  params BYTEA NOT NULL,
  headers TEXT,
  progress TEXT,
  partials INTEGER NOT NULL DEFAULT 0,
  result_nframes INTEGER,
  result BYTEA,
  error TEXT,
  dedup_key TEXT,
  parent_id TEXT,
  children TEXT,
  leased_by TEXT
);

CREATE INDEX jobs_queued ON jobs(service, priority DESC, seq) WHERE status = 'queued';
CREATE INDEX jobs_service ON jobs(service, seq);
CREATE INDEX jobs_retain ON jobs(retain_until) WHERE retain_until IS NOT NULL;
CREATE INDEX jobs_expiry ON jobs(expires_at) WHERE status = 'queued' AND expires_at IS NOT NULL;
CREATE INDEX jobs_running ON jobs(leased_by) WHERE status = 'running';

CREATE TABLE job_partials (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  nframes INTEGER NOT NULL,
  body BYTEA NOT NULL,
  PRIMARY KEY (job_id, seq)
);

-- Pub/sub. Topic, node and subscription names compare in code-point order (COLLATE "C", as
-- SQLite's BINARY), whatever the database's collation: prefix ranges and order match SQLite.
CREATE TABLE pubsub_meta (
  key TEXT PRIMARY KEY,
  value BIGINT NOT NULL
);

CREATE TABLE retained (
  topic TEXT COLLATE "C" PRIMARY KEY,
  seq BIGINT NOT NULL,
  published_at BIGINT NOT NULL,
  expires_at BIGINT,
  nframes INTEGER NOT NULL,
  body BYTEA NOT NULL,
  headers TEXT
);

CREATE INDEX retained_expiry ON retained(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE subscriptions (
  name TEXT COLLATE "C" PRIMARY KEY,
  pattern TEXT NOT NULL,
  created_at BIGINT NOT NULL
);

CREATE TABLE confirmations (
  topic TEXT COLLATE "C" NOT NULL,
  node TEXT COLLATE "C" NOT NULL,
  seq BIGINT NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (topic, node)
);

CREATE UNLOGGED TABLE nodes (
  id TEXT PRIMARY KEY,
  started_at BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL
);
`;
