/**
 * pzq.test.ts again, every broker on the local PostgreSQL store (one schema per data folder)
 * instead of SQLite: the same promises hold on either store.
 */
import { after } from 'node:test';
import { dropSchemasLike, storeSchemaPrefix } from '../../helpers/postgres.js';

process.env.FERRY_TEST_STORE = 'postgres';
await import('../pzq.test.js');
// After the suite's own hooks (its brokers stopped), the schemas its brokers used.
after(() => dropSchemasLike(storeSchemaPrefix()));
