/**
 * Incoming discovery messages are untrusted input: each is checked against its schema before
 * use. Unknown fields are dropped (a newer proxy may send more); free text is bounded.
 */
import * as z from 'zod';
import { MAX_AUDIT_BATCH, type CreateCertificateRequest, type DescribeTokenRequest, type DiscoveryRequest } from '../mesh/discovery-protocol.js';
import type { AuthzAuditRecord } from '../telemetry/audit/record.js';
import { RESOURCE_TYPES } from '../mesh/snapshot.js';

const MAX_TEXT = 256;
const MAX_MESSAGE = 4_096;

const boundedText = (max: number) => z.string().transform((value) => (value.length > max ? `${value.slice(0, max)}…` : value));

const discoveryRequestSchema = z.object({
  node: z
    .object({
      workload: z.string().max(MAX_TEXT),
      proxyVersion: boundedText(MAX_TEXT),
      hostname: boundedText(MAX_TEXT).optional(),
      pid: z.number().int().nonnegative().optional(),
      // host:port only (no scheme, no path): `trellis top` scrapes http://<this>/stats/prometheus.
      metrics: z.string().max(MAX_TEXT).regex(/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/, 'expected host:port').optional(),
    })
    .optional(),
  typeUrl: z.enum(RESOURCE_TYPES),
  versionInfo: z.string().max(MAX_TEXT),
  responseNonce: z.string().max(MAX_TEXT),
  errorDetail: z.object({ message: boundedText(MAX_MESSAGE) }).optional(),
});

const createCertificateSchema = z.object({
  csrPem: z.string().min(1).max(16_384),
  joinToken: z.string().min(1).max(MAX_TEXT).optional(),
  ttlSeconds: z.number().int().positive().optional(),
});

const describeTokenSchema = z.object({ joinToken: z.string().min(1).max(MAX_TEXT) });

const text = (max = MAX_TEXT) => boundedText(max);
const nullableText = z.union([text(), z.null()]);

/** An authorization record a proxy reports: only the fields Trellis writes, every string bounded. */
const authzRecordSchema = z.object({
  kind: z.literal('authz'),
  time: z.string().max(64),
  decision: z.enum(['ALLOW', 'DENY']),
  policy: nullableText,
  rule: z.union([z.number().int().nonnegative(), z.null()]),
  action: nullableText,
  reason: text(MAX_MESSAGE),
  dryRun: z.array(z.object({ policy: text(), rule: z.number().int().nonnegative(), effect: z.enum(['would allow', 'would deny']) })).max(64),
  dryRunDecision: z.enum(['ALLOW', 'DENY']).optional(),
  auditPolicies: z.array(text()).max(64).optional(),
  source: z.object({ principal: text().optional(), address: text(64).optional(), port: z.number().int().optional() }),
  requestPrincipal: text().optional(),
  destination: z.object({ workload: text(), namespace: text(), principal: text().optional(), port: z.number().int().optional() }),
  request: z
    .object({
      method: text(32).optional(),
      host: text().optional(),
      path: text(2_048).optional(),
      protocol: text(32).optional(),
      headers: z.record(z.string().max(MAX_TEXT), text(MAX_MESSAGE)).optional(),
    })
    .optional(),
  mtls: z.enum(['mutual_tls', 'none']),
  mtlsMode: z.enum(['STRICT', 'PERMISSIVE', 'DISABLE']).optional(),
  stage: z.enum(['mtls', 'request', 'authentication', 'authorization']).optional(),
  requestId: text().optional(),
  traceId: text(64).optional(),
});

const auditReportSchema = z.object({ records: z.array(authzRecordSchema).max(MAX_AUDIT_BATCH) });

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

function parser<T>(schema: z.ZodType, what: string): (input: unknown) => Parsed<T> {
  return (input) => {
    const result = schema.safeParse(input);
    if (result.success) return { ok: true, value: result.data as T };
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    return { ok: false, message: `malformed ${what}${where}: ${issue?.message ?? 'invalid'}` };
  };
}

export const parseDiscoveryRequest = parser<DiscoveryRequest>(discoveryRequestSchema, 'DiscoveryRequest');
export const parseCreateCertificateRequest = parser<CreateCertificateRequest>(createCertificateSchema, 'CreateCertificateRequest');
export const parseDescribeTokenRequest = parser<DescribeTokenRequest>(describeTokenSchema, 'DescribeTokenRequest');
export const parseAuditReport = parser<{ records: AuthzAuditRecord[] }>(auditReportSchema, 'AuditReportRequest');
