/**
 * 0002: wake-ups between brokers sharing the store. Triggers send a notification on the
 * channel named after the schema when messages become ready (`q<queue id>`), jobs are queued
 * (`j<service>`), or a job's row or partial results change (`x<job id>`). They fire only in
 * sessions that set `ferry.notify = on` — a broker sets it while other brokers are alive —
 * so a broker alone pays a setting lookup per row, not the notify queue's commit lock.
 * PostgreSQL folds identical notifications of one transaction into one.
 */
export const PG_MIGRATION_0002_WAKE = `
CREATE FUNCTION wake_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('ferry.notify', true) = 'on' THEN
    PERFORM pg_notify(TG_TABLE_SCHEMA, 'q' || NEW.queue_id);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER messages_wake AFTER INSERT OR UPDATE OF state ON messages
  FOR EACH ROW WHEN (NEW.state = 0) EXECUTE FUNCTION wake_message();

CREATE FUNCTION wake_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('ferry.notify', true) = 'on' THEN
    IF NEW.status = 'queued' THEN
      PERFORM pg_notify(TG_TABLE_SCHEMA, 'j' || NEW.service);
    END IF;
    PERFORM pg_notify(TG_TABLE_SCHEMA, 'x' || NEW.id);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER jobs_wake AFTER INSERT OR UPDATE ON jobs
  FOR EACH ROW EXECUTE FUNCTION wake_job();

CREATE FUNCTION wake_partial() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('ferry.notify', true) = 'on' THEN
    PERFORM pg_notify(TG_TABLE_SCHEMA, 'x' || NEW.job_id);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER job_partials_wake AFTER INSERT ON job_partials
  FOR EACH ROW EXECUTE FUNCTION wake_partial();
`;
