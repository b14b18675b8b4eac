/**
 * The layer rules of BLUEPRINT §5, enforced by `npm run check:deps` (part of `npm test`).
 * core knows no sockets and no SQL; only transport imports zeromq; storage backends alone
 * import database drivers; the client never reaches the server side.
 */
module.exports = {
  forbidden: [
    {
      name: 'core-is-pure',
      comment: 'core/ knows no sockets, no SQL, no other layer but the storage contract',
      severity: 'error',
      from: { path: '^src/core/' },
      to: {
        path: '^src/(transport|dialects|server|client|cli|protocol)/|^src/storage/(?!types\\.ts)|node_modules/(zeromq|better-sqlite3|pg)/|^(fs|net|http|child_process|dgram)$',
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'core-types-only-from-storage',
      comment: 'core may only see the storage contract, never a backend',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/storage/(sqlite|postgres)/' },
    },
    {
      name: 'only-transport-imports-zeromq',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/transport/' },
      to: { path: 'node_modules/zeromq/' },
    },
    {
      name: 'only-storage-backends-import-drivers',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/storage/(sqlite|postgres)/' },
      to: { path: 'node_modules/(better-sqlite3|pg)/' },
    },
    {
      name: 'model-is-leaf',
      comment: 'model/ is the shared bottom layer: types and constants, importing no other layer',
      severity: 'error',
      from: { path: '^src/model/' },
      to: { path: '^src/(?!model/)|^node_modules/' },
    },
    {
      name: 'storage-knows-no-core',
      comment: 'storage speaks the shared model, never the core that calls it',
      severity: 'error',
      from: { path: '^src/storage/' },
      to: { path: '^src/core/' },
    },
    {
      name: 'storage-knows-no-transport',
      severity: 'error',
      from: { path: '^src/storage/' },
      to: { path: '^src/(transport|dialects|server|client|cli|protocol)/' },
    },
    {
      name: 'protocol-is-pure',
      comment: 'protocol/ is a pure codec: no I/O, no core, no transport',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: {
        path: '^src/(core|storage|transport|dialects|server|client|cli)/|node_modules/(zeromq|better-sqlite3)/',
      },
    },
    {
      name: 'dialects-go-through-core',
      comment: 'dialects map frames onto core calls: no storage, no sockets',
      severity: 'error',
      from: { path: '^src/dialects/' },
      to: { path: '^src/(storage|transport|server|client|cli)/' },
    },
    {
      name: 'http-goes-through-core',
      comment:
        'the gateway calls core (and errors, server config types), never storage, sockets or dialects; ' +
        'only the ZMWS text formatting (pure, shared with the ZMWS dialect) is allowed',
      severity: 'error',
      from: { path: '^src/http/' },
      to: {
        path: '^src/(storage|transport|dialects|client|cli|protocol)/|^src/server/(?!config\\.ts)|node_modules/(zeromq|better-sqlite3|pg)/',
        pathNot: '^src/dialects/zmws/zmws-commands\\.ts$',
      },
    },
    {
      name: 'client-never-reaches-server-side',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { path: '^src/(core|storage|dialects|server|cli)/' },
    },
    {
      name: 'transport-is-leaf',
      severity: 'error',
      from: { path: '^src/transport/' },
      to: { path: '^src/(core|storage|dialects|server|client|cli|protocol)/' },
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};
