export * from './istio-labels.js';
export * from './istio-metrics.js';
export * from './controlplane-metrics.js';
export * from './metrics-server.js';
export * from './batching-queue.js';
export * from './access-log.js';
export * from './peer-metadata.js';
export * as audit from './audit/index.js';
