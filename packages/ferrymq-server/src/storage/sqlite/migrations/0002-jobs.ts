/** 0002: jobs of the job server (status as text) and the partial results of durable jobs. */
export const MIGRATION_0002_JOBS = `
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  service TEXT NOT NULL,
  status TEXT NOT NULL,
  priority INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  not_before INTEGER NOT NULL,
  expires_at INTEGER,
  started_at INTEGER,
  finished_at INTEGER,
  retain_until INTEGER,
  nframes INTEGER NOT NULL,
  params BLOB NOT NULL,
  headers TEXT,
  progress TEXT,
  partials INTEGER NOT NULL DEFAULT 0,
  result_nframes INTEGER,
  result BLOB,
  error TEXT,
  dedup_key TEXT,
  parent_id TEXT,
  children TEXT
);

CREATE INDEX jobs_queued ON jobs(service, priority DESC, seq) WHERE status = 'queued';
CREATE INDEX jobs_service ON jobs(service, seq);
CREATE INDEX jobs_retain ON jobs(retain_until) WHERE retain_until IS NOT NULL;
CREATE INDEX jobs_expiry ON jobs(expires_at) WHERE status = 'queued' AND expires_at IS NOT NULL;

CREATE TABLE job_partials (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  nframes INTEGER NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
`;
