/**
 * 0005: large message bodies in chunks. A body over one chunk is stored as rows of
 * `message_chunks` (in order, by `seq`) and the message's own `body` is empty, `chunks` its
 * number of chunks; binding and storing it in one piece made SQLite hold two extra copies of
 * it at once. The chunks go with their message, however it is deleted.
 */
export const MIGRATION_0005_MESSAGE_CHUNKS = `
ALTER TABLE messages ADD COLUMN chunks INTEGER NOT NULL DEFAULT 0;

CREATE TABLE message_chunks (
  message_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE UNIQUE INDEX message_chunks_order ON message_chunks(message_id, seq);

CREATE TRIGGER message_chunks_gone AFTER DELETE ON messages WHEN old.chunks > 0
BEGIN
  DELETE FROM message_chunks WHERE message_id = old.id;
END;
`;
