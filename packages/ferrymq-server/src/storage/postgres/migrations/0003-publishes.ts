/**
 * 0003: publishes shared by the brokers of one store. The publish counter row exists from the
 * start (shared stores number publishes with `UPDATE … SET value = value + n RETURNING`, which
 * needs the row); `publishes` (UNLOGGED: a relay, not a record) holds each publish for a few
 * seconds so other brokers can hand it to their live subscribers; statement-level triggers
 * notify the schema's channel with `p` (publishes committed) and `s` (durable subscriptions
 * changed), in sessions with `ferry.notify` on only, as the wake-ups of migration 0002.
 */
export const PG_MIGRATION_0003_PUBLISHES = `
INSERT INTO pubsub_meta(key, value) VALUES ('seq', 0) ON CONFLICT (key) DO NOTHING;

CREATE UNLOGGED TABLE publishes (
  seq BIGINT PRIMARY KEY,
  topic TEXT NOT NULL,
  retained BOOLEAN NOT NULL,
  deleted BOOLEAN NOT NULL,
  published_at BIGINT NOT NULL,
  nframes INTEGER NOT NULL,
  body BYTEA NOT NULL,
  headers TEXT
);

CREATE FUNCTION wake_publish() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('ferry.notify', true) = 'on' THEN
    PERFORM pg_notify(TG_TABLE_SCHEMA, 'p');
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER publishes_wake AFTER INSERT ON publishes
  FOR EACH STATEMENT EXECUTE FUNCTION wake_publish();

CREATE FUNCTION wake_subscription() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('ferry.notify', true) = 'on' THEN
    PERFORM pg_notify(TG_TABLE_SCHEMA, 's');
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER subscriptions_wake AFTER INSERT OR UPDATE OR DELETE ON subscriptions
  FOR EACH STATEMENT EXECUTE FUNCTION wake_subscription();
`;
