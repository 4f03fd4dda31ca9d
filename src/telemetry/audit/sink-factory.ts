/**
 * Builds a sink from its configured form (MeshConfig `audit.sinks`, `--audit`); see
 * src/api/audit-config.ts for the forms.
 */
import type { AuditSinkSpec } from '../../api/audit-config.js';
import { FileSink } from './file-sink.js';
import type { AuditSink, QueuedSinkOptions } from './sink.js';
import { StreamSink } from './stdout-sink.js';
import { SyslogSink } from './syslog-sink.js';
import { WebhookSink } from './webhook-sink.js';

export function createAuditSink(spec: AuditSinkSpec, options: QueuedSinkOptions & { appName?: string } = {}): AuditSink {
  const queued: QueuedSinkOptions = {
    ...(options.bufferSize === undefined ? {} : { bufferSize: options.bufferSize }),
    ...(options.maxBatch === undefined ? {} : { maxBatch: options.maxBatch }),
    ...(options.onError === undefined ? {} : { onError: options.onError }),
  };
  switch (spec.type) {
    case 'stdout':
      return new StreamSink(queued);
    case 'file':
      return new FileSink({ ...queued, path: spec.path });
    case 'syslog':
      return new SyslogSink({
        ...queued,
        transport: spec.transport,
        host: spec.host,
        port: spec.port,
        ...(spec.facility === undefined ? {} : { facility: spec.facility }),
        ...(options.appName === undefined ? {} : { appName: options.appName }),
      });
    case 'webhook':
      return new WebhookSink({ ...queued, url: spec.url });
  }
}
