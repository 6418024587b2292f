/**
 * Jest configuration shared by the lab extensions: JupyterLab's own (`@jupyterlab/testutils`)
 * plus our test layout. A package's `jest.config.js` is one line:
 *
 *   module.exports = require('@continuum-hub/common/jest.config.base')(__dirname);
 */
const jestJupyterLab = require('@jupyterlab/testutils/lib/jest-config');

// dependencies published as ES modules only: Jest must transform them too (JupyterLab's list
// lacks its own packages, e.g. @jupyterlab/application)
const esModules = [
  '@codemirror',
  '@marijn',
  '@microsoft',
  '@jupyter/ydoc',
  '@jupyter/react-components',
  '@jupyter/web-components',
  '@jupyterlab/',
  'color',
  'exenv-es6',
  'lib0',
  'marked',
  'nanoid',
  'vscode-ws-jsonrpc',
  'y-protocols',
  'y-websocket',
  'yjs'
].join('|');

/**
 * The Jest configuration of the package in `baseDir`.
 *
 * @param {string} baseDir - the package's folder (its `jest.config.js` passes `__dirname`)
 * @returns {object} the configuration
 */
module.exports = function continuumJestConfig(baseDir) {
  const baseConfig = jestJupyterLab(baseDir);
  return {
    ...baseConfig,
    rootDir: baseDir,
    automock: false,
    collectCoverageFrom: ['src/**/*.{ts,tsx}', '!src/**/*.d.ts'],
    coverageReporters: ['text-summary'],
    testRegex: 'src/.*/.*.spec.ts[x]?$',
    transform: {
      ...baseConfig.transform,
      // JupyterLab's Babel settings, so that packages need no babel.config.js of their own
      '^.+\\.jsx?$': [
        'babel-jest',
        { configFile: require.resolve('@jupyterlab/testutils/lib/babel.config') }
      ]
    },
    // replaces JupyterLab's pattern: a file matching any pattern is left untransformed
    transformIgnorePatterns: [`/node_modules/(?!${esModules}).+`]
  };
};
