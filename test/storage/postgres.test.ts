/**
 * The storage contract against the PostgreSQL backend (a fresh schema per case, on the local
 * server), and the promises only it makes: migrations in their own schema under an advisory
 * lock, refusal of a newer schema, and leases owned per broker node.
 */
import { PostgresStorage } from 'ferrymq-server/internal/storage/postgres/pg-storage.js';
import type { SyncPolicy } from 'ferrymq-server/internal/storage/types.js';
import { dropSchema, freshSchemaName, PG_TEST_URL } from '../helpers/postgres.js';
import { runStorageContract, type StorageFactory } from './contract.js';
import { runJobStorageContract } from './jobs-contract.js';
import { runQueueLifecycleContract } from './queue-lifecycle-contract.js';

const ALWAYS: SyncPolicy = { mode: 'always' };
const NODE_TIMEOUT_MS = 15_000;

const postgresFixture: StorageFactory = async () => {
  const schema = freshSchemaName();
  const make = (): PostgresStorage =>
    new PostgresStorage({
      url: PG_TEST_URL,
      schema,
      sync: ALWAYS,
      nodeId: 'test-node',
      nodeTimeoutMs: NODE_TIMEOUT_MS,
    });
  return {
    storage: make(),
    reopen: async () => make(),
    cleanup: async () => dropSchema(schema),
  };
};

runStorageContract('postgres', postgresFixture);
runJobStorageContract('postgres', postgresFixture);
runQueueLifecycleContract('postgres', postgresFixture);
