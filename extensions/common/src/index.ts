/**
 * What every Continuum Hub lab extension shares: requests to the `continuum_lab` server
 * extension, the registration of commands and side panels, models that poll the server, panel
 * buttons and durations, the estimate line. A library bundled into each extension, not an extension itself.
 */
export * from './commands';
export * from './dom';
export * from './estimate';
export * from './list-panel';
export * from './panels';
export * from './polling';
export * from './request';
