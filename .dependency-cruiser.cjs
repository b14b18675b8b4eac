/**
 * The layer rules of BLUEPRINT §5, enforced by `npm run check:deps` (part of `npm test`).
 * Two packages: the SDK (`packages/ferrymq`: model, protocol, client, the client side of the
 * transport) and the broker (`packages/ferrymq-server`: core, storage, dialects, http, server,
 * cli, the server side of the transport), which depends on the SDK and never the reverse.
 * model is the leaf everyone speaks; core knows no sockets and no SQL; only transport imports
 * zeromq; storage backends alone import database drivers and know nothing of core.
 */
const SDK = '^packages/ferrymq/src/';
const SRV = '^packages/ferrymq-server/src/';
const SDK_DIST = 'packages/ferrymq/dist/';

module.exports = {
  forbidden: [
    {
      name: 'model-is-leaf',
      comment: 'model/ is the shared bottom layer: types and constants, importing no other layer',
      severity: 'error',
      from: { path: `${SDK}model/` },
      to: { pathNot: `${SDK}model/` },
    },
    {
      name: 'sdk-never-reaches-the-broker',
      comment: 'the SDK installs without the broker: nothing in it may import the broker package',
      severity: 'error',
      from: { path: SDK },
      to: {
        path: `^packages/ferrymq-server/|node_modules/(ferrymq-server|better-sqlite3|pg|fastify|@fastify|prom-client)/`,
      },
    },
    {
      name: 'client-knows-no-broker-internals',
      severity: 'error',
      from: { path: `${SDK}(client|protocol)/` },
      to: { path: `${SDK}index\\.ts$` },
    },
    {
      name: 'protocol-is-pure',
      comment: 'protocol/ is a pure codec: no I/O, no client, no transport',
      severity: 'error',
      from: { path: `${SDK}protocol/` },
      to: { path: `${SDK}(client|transport)/|node_modules/zeromq/` },
    },
    {
      name: 'core-is-pure',
      comment:
        'core/ knows no sockets, no SQL, no other layer but the model and the storage contract',
      severity: 'error',
      from: { path: `${SRV}core/` },
      to: {
        path: `${SRV}(transport|dialects|server|cli|http)/|${SRV}storage/(?!types\\.ts)|${SDK_DIST}(protocol|client|transport)/|${SDK_DIST}index|node_modules/(zeromq|better-sqlite3|pg)/|^(fs|net|http|child_process|dgram)$`,
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'core-types-only-from-storage',
      comment: 'core may only see the storage contract, never a backend',
      severity: 'error',
      from: { path: `${SRV}core/` },
      to: { path: `${SRV}storage/(sqlite|postgres)/` },
    },
    {
      name: 'only-transport-imports-zeromq',
      severity: 'error',
      from: { path: '^packages/', pathNot: `${SDK}transport/|${SRV}transport/` },
      to: { path: 'node_modules/zeromq/' },
    },
    {
      name: 'only-storage-backends-import-drivers',
      severity: 'error',
      from: { path: '^packages/', pathNot: `${SRV}storage/(sqlite|postgres)/` },
      to: { path: 'node_modules/(better-sqlite3|pg)/' },
    },
    {
      name: 'storage-knows-no-core',
      comment: 'storage speaks the shared model, never the core that calls it',
      severity: 'error',
      from: { path: `${SRV}storage/` },
      to: { path: `${SRV}core/` },
    },
    {
      name: 'storage-knows-no-transport',
      severity: 'error',
      from: { path: `${SRV}storage/` },
      to: {
        path: `${SRV}(transport|dialects|server|cli|http)/|${SDK_DIST}(protocol|client|transport)/|${SDK_DIST}index`,
      },
    },
    {
      name: 'security-is-pure',
      comment:
        'security/ is the auth model (users, keys, tokens, grants) that the ZeroMQ side and the ' +
        'HTTP gateway share: no sockets, no files, no other broker layer',
      severity: 'error',
      from: { path: `${SRV}security/` },
      to: {
        path: `${SRV}(core|storage|transport|dialects|server|cli|http)/|${SDK_DIST}(protocol|client|transport)/|${SDK_DIST}index|node_modules/(zeromq|fastify|@fastify|better-sqlite3|pg)/|^(fs|net|http|https|child_process|dgram)$`,
      },
    },
    {
      name: 'dialects-go-through-core',
      comment: 'dialects map frames onto core calls: no storage, no sockets',
      severity: 'error',
      from: { path: `${SRV}dialects/` },
      to: {
        path: `${SRV}(storage|transport|server|cli|http)/|${SDK_DIST}(client|transport)/|${SDK_DIST}index`,
      },
    },
    {
      name: 'http-goes-through-core',
      comment:
        'the gateway calls core (and server config types), never storage, sockets or dialects; ' +
        'only the ZMWS text formatting (pure, shared with the ZMWS dialect) is allowed',
      severity: 'error',
      from: { path: `${SRV}http/` },
      to: {
        path: `${SRV}(storage|transport|dialects|cli)/|${SRV}server/(?!config\\.ts)|${SDK_DIST}(protocol|client|transport)/|${SDK_DIST}index|node_modules/(zeromq|better-sqlite3|pg)/`,
        pathNot: `${SRV}dialects/zmws/zmws-commands\\.ts$`,
      },
    },
    {
      name: 'transport-is-leaf',
      severity: 'error',
      from: { path: `${SDK}transport/|${SRV}transport/` },
      to: {
        path: `${SDK}(client|protocol)/|${SRV}(core|storage|dialects|server|cli|http)/|${SDK_DIST}(client|protocol)/`,
      },
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    // The broker reaches the SDK through its package (its dist/): cruised as src/ on its own.
    doNotFollow: { path: ['node_modules', '^packages/[^/]+/dist/'] },
    tsConfig: { fileName: 'tsconfig.base.json' },
    tsPreCompilationDeps: true,
    combinedDependencies: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
