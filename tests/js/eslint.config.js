// ESLint for the web client (static/js: browser ES modules, no build step) and its unit
// tests (tests/js: node --test). tests/test_js.py runs it from the repository root:
//   tests/js/node_modules/.bin/eslint -c tests/js/eslint.config.js static/js tests/js
import js from '@eslint/js';
import globals from 'globals';

const SMALL = { max: 40, skipBlankLines: true, skipComments: true };

export default [
  { basePath: '../..' }, // patterns below are relative to the repository root
  { ignores: ['tests/js/node_modules/**', 'static/vendor/**'] }, // vendored libraries: as published
  js.configs.recommended,
  {
    files: ['static/js/**/*.js', 'tests/js/**/*.{js,mjs}'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
    rules: { eqeqeq: ['error', 'smart'], 'no-var': 'error', 'prefer-const': 'error', 'no-shadow': 'error' },
  },
  { files: ['static/js/**/*.js'], languageOptions: { globals: globals.browser } },
  { files: ['tests/js/**/*.{js,mjs}'], languageOptions: { globals: globals.node } },
  {
    // Small modules and small functions (issue 14): a screen that outgrows them is split
    // into a page module and its parts (views, pure rules), as rooms/, stories/ and me/ are.
    files: ['static/js/**/*.js'],
    rules: {
      'max-lines': ['error', { max: 250, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', SMALL],
    },
  },
];
