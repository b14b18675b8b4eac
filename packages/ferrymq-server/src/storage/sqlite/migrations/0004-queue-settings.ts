/**
 * 0004: what an operator set on a queue at runtime — paused, and policy values (a JSON object
 * of policy key → number) that win over the config file until reset. One row per queue that
 * has any; removed with its queue.
 */
export const MIGRATION_0004_QUEUE_SETTINGS = `
CREATE TABLE queue_settings (
  queue_id INTEGER PRIMARY KEY REFERENCES queues(id),
  paused INTEGER NOT NULL DEFAULT 0,
  policy TEXT NOT NULL DEFAULT '{}',
  updated_at INTEGER NOT NULL
);
`;
