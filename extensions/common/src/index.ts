/**
 * What every Continuum Hub lab extension shares: requests to the `continuum_lab` server
 * extension, and the registration of commands and side panels. A library bundled into each
 * extension, not an extension itself.
 */
export * from './commands';
export * from './panels';
export * from './request';
