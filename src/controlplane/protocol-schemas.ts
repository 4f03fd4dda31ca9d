/**
 * Incoming discovery messages are untrusted input: each is checked against its schema before
 * use. Unknown fields are dropped (a newer proxy may send more); free text is bounded.
 */
import * as z from 'zod';
import type { CreateCertificateRequest, DescribeTokenRequest, DiscoveryRequest } from '../mesh/discovery-protocol.js';
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
