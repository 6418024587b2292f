/**
 * What every Continuum Hub lab extension shares: requests to the `continuum_lab` server
 * extension, the registration of commands and side panels, the front door (Launcher section,
 * *Continuum* menu) and our icons, models that poll the server, panel
 * buttons and durations, the estimate line. A library bundled into each extension, not an extension itself.
 */
export * from './commands';
export * from './dom';
export * from './estimate';
export * from './front-door';
export * from './icons';
export * from './list-panel';
export * from './panels';
export * from './polling';
export * from './relative-time';
export * from './request';
