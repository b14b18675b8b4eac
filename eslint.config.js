// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

/** node:test's describe/it/hooks return promises the runner awaits itself. */
const NODE_TEST_CALLS = [
  {
    from: 'package',
    package: 'node:test',
    name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
  },
];

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'data/**',
      'examples/python/**',
      'scripts/**',
      '*.cjs',
      '*.js',
    ],
  },
  eslint.configs.recommended,
  // Type-aware rules: every path of a broker is async, so a dropped rejected promise or a
  // promise passed where a callback's result is ignored must fail the build.
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: NODE_TEST_CALLS },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      // An async method that implements a promise-returning interface need not await.
      '@typescript-eslint/require-await': 'off',
      // Re-rejecting with a caught `unknown` passes the original error on unchanged.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-console': ['error', { allow: ['error'] }],
      'no-duplicate-imports': 'error',
    },
  },
  {
    // Plain JavaScript (the dashboard in the browser, the bin entry): no type information. The
    // Node examples are the exception: the root tsconfig type-checks them (checkJs).
    files: ['**/*.js', '**/*.mjs'],
    ignores: ['examples/node/**'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The dashboard runs in the browser: plain JavaScript, the browser's globals.
    files: ['packages/ferrymq-server/src/http/dashboard/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        [
          'document',
          'window',
          'fetch',
          'getComputedStyle',
          'confirm',
          'EventSource',
          'setInterval',
          'clearInterval',
          'location',
          'history',
          'localStorage',
          'sessionStorage',
          'AbortController',
          'TextDecoderStream',
          'CustomEvent',
          'setTimeout',
          'URLSearchParams',
          'Node',
          'console',
        ].map((g) => [g, 'readonly']),
      ),
    },
    rules: { 'no-console': ['error', { allow: ['error', 'warn'] }] },
  },
  {
    // The peers' adapters are typed against clients installed only by `npm run bench:peers`.
    files: ['bench/peers/adapters/**'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Tests read untyped JSON (HTTP bodies, CLI output) and check its shape with assertions at
    // run time; typing every response would only restate those assertions.
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    files: ['test/**', 'bench/**', 'examples/node/**', 'packages/ferrymq-server/src/cli/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // TypeScript checks the examples' names (Node's globals included); ESLint's own check does
    // not know them.
    // They read JSON.parse's untyped result like the tests do (a JSDoc cast is lost on ESLint).
    files: ['examples/node/**'],
    rules: {
      'no-undef': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
);
