// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'data/**',
      'examples/**',
      'scripts/**',
      '*.cjs',
      '*.js',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-console': ['error', { allow: ['error'] }],
    },
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
          'Node',
          'console',
        ].map((g) => [g, 'readonly']),
      ),
    },
    rules: { 'no-console': ['error', { allow: ['error', 'warn'] }] },
  },
  {
    files: ['test/**', 'bench/**', 'packages/ferrymq-server/src/cli/**'],
    rules: { 'no-console': 'off' },
  },
);
