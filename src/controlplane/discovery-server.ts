/**
 * The discovery server: gRPC on one mTLS port, serving the control plane's own SVID.
 *
 *   Certificates.DescribeToken / Create   bootstrap with a join token (no client certificate
 *                                          needed), renewal over mTLS for the caller's identity
 *   Discovery.Stream                       a proxy, authenticated by its SVID, subscribes to
 *                                          its snapshot's four resource types
 *   Audit.Report                           a proxy, authenticated by its SVID, reports a batch
 *                                          of audit records (handed to `onAudit`)
 *
 * Every RPC except the two bootstrap calls requires a client SVID that verifies against the
 * current bundle and revocations. A stream's first request names the WorkloadEntry; the SVID
 * must carry that workload's identity (no impersonation). Config changes are coalesced
 * (debounced) and each proxy receives only the types whose content changed for it; trust
 * changes (bundle, revocations) go to every proxy at once, and streams whose certificate has
 * been revoked, or has expired, are closed.
 */
import { Metadata, type sendUnaryData, Server, type ServerDuplexStream, type ServerUnaryCall, status as GrpcStatus, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { errorMessage } from '../api/errors.js';
import type { TrustBundle } from '../identity/bundle.js';
import { CaRefusedError, type IdentityProof, type MeshCA } from '../identity/ca.js';
import type { SpiffeId } from '../identity/spiffe-id.js';
import type { Svid } from '../identity/svid.js';
import { compileSnapshot, snapshotVersions } from '../mesh/compile.js';
import {
  AUDIT_METHODS,
  type AuditReportResponse,
  CERTIFICATE_METHODS,
  type CreateCertificateResponse,
  type DescribeTokenResponse,
  DISCOVERY_METHODS,
  type DiscoveryRequest,
  type DiscoveryResponse,
  ERROR_CODE_METADATA_KEY,
} from '../mesh/discovery-protocol.js';
import type { InboundPolicySelector } from '../mesh/inbound-policy.js';
import { buildRegistry, findWorkload, type Registry } from '../mesh/registry.js';
import type { TrustSnapshot } from '../mesh/snapshot.js';
import type { ControlPlaneMetrics } from '../telemetry/controlplane-metrics.js';
import type { ConfigState } from './config-store.js';
import { authenticatePeer, type CallerContext, type TrustState, verifyChain } from './peer-auth.js';
import type { AuditRecord } from '../telemetry/audit/record.js';
import { parseAuditReport, parseCreateCertificateRequest, parseDescribeTokenRequest, parseDiscoveryRequest } from './protocol-schemas.js';
import { ProxyConnection, type ProxySyncStatus } from './proxy-connection.js';
import { RotatingServerCredentials } from './server-credentials.js';

export interface DiscoveryServerOptions {
  ca: MeshCA;
  /** The SVID the server presents, and the bundle/revocations it verifies peers with. */
  svid: Svid;
  trust: TrustState;
  logger: Logger;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Config changes within this window are pushed together. */
  debounceMs?: number;
  /** Longest a burst of changes can postpone a push. */
  maxDebounceMs?: number;
  selectPolicy?: InboundPolicySelector;
  /** Connected proxies, pushes, NACKs, certificates (port 15014); absent: not measured. */
  metrics?: ControlPlaneMetrics;
  /** Audit records: what proxies report (stamped with their identity), and their NACKs. */
  onAudit?: (record: AuditRecord) => void;
}

/** A gRPC status error with a stable Trellis code in the trailers. */
interface StatusError {
  code: GrpcStatus;
  details: string;
  metadata: Metadata;
}

interface Stream {
  connection: ProxyConnection;
  call: ServerDuplexStream<unknown, DiscoveryResponse>;
  chain: Uint8Array[];
  expiry: NodeJS.Timeout;
}

/** setTimeout cannot wait longer than this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class DiscoveryServer {
  private readonly server = new Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 });
  private readonly credentials: RotatingServerCredentials;
  private readonly options: DiscoveryServerOptions;
  private readonly logger: Logger;
  private readonly streams = new Map<string, Stream>();
  private trust: TrustState;
  private trustSnapshot: TrustSnapshot;
  private config: ConfigState | undefined;
  private registry: Registry | undefined;
  private pendingConfig: ConfigState | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private debounceDeadline = 0;
  private nonce = 0;
  private streamIds = 0;
  private boundPort = 0;
  private stopped = false;
  /** When the work behind the pushes being sent began (push latency). */
  private pushStartedAt = 0;
  /** When a config change arrived and is waiting for the debounce; 0 when none. */
  private configChangedAt = 0;
  /** The change being pushed: when it arrived, and the streams connected then that have not acknowledged yet. */
  private convergence: { since: number; waiting: Set<string> } | undefined;

  private constructor(options: DiscoveryServerOptions) {
    this.options = options;
    this.logger = options.logger;
    this.trust = options.trust;
    this.trustSnapshot = trustSnapshotOf(options.trust);
    this.credentials = new RotatingServerCredentials(options.svid, options.trust.bundle);
    this.server.addService(DISCOVERY_METHODS, { Stream: (call: ServerDuplexStream<unknown, DiscoveryResponse>) => this.handleStream(call) } as UntypedServiceImplementation);
    this.server.addService(CERTIFICATE_METHODS, {
      Create: (call: ServerUnaryCall<unknown, CreateCertificateResponse>, callback: sendUnaryData<CreateCertificateResponse>) => void this.handleCreate(call, callback),
      DescribeToken: (call: ServerUnaryCall<unknown, DescribeTokenResponse>, callback: sendUnaryData<DescribeTokenResponse>) => void this.handleDescribeToken(call, callback),
    } as UntypedServiceImplementation);
    this.server.addService(AUDIT_METHODS, {
      Report: (call: ServerUnaryCall<unknown, AuditReportResponse>, callback: sendUnaryData<AuditReportResponse>) => this.handleAuditReport(call, callback),
    } as UntypedServiceImplementation);
  }

  static async start(options: DiscoveryServerOptions, config: ConfigState | undefined): Promise<DiscoveryServer> {
    const server = new DiscoveryServer(options);
    server.applyConfig(config);
    const address = `${options.host ?? '127.0.0.1'}:${options.port ?? 15012}`;
    server.boundPort = await new Promise<number>((resolve, reject) => {
      server.server.bindAsync(address, server.credentials, (err, port) => (err ? reject(err) : resolve(port)));
    });
    return server;
  }

  get port(): number {
    return this.boundPort;
  }

  /**
   * The config version every connected proxy's snapshot is compiled from (pushes included); a
   * newer accepted version may still wait out the push debounce.
   */
  get configVersion(): string | undefined {
    return this.config?.version;
  }

  /** A new accepted config: pushed after the debounce window. */
  setConfig(state: ConfigState): void {
    this.pendingConfig = state;
    const now = Date.now();
    if (this.configChangedAt === 0) this.configChangedAt = now;
    if (this.debounceTimer === undefined) this.debounceDeadline = now + (this.options.maxDebounceMs ?? 1_000);
    else clearTimeout(this.debounceTimer);
    const delay = Math.max(0, Math.min(this.options.debounceMs ?? 100, this.debounceDeadline - now));
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      const pending = this.pendingConfig;
      this.pendingConfig = undefined;
      if (pending !== undefined && !this.stopped) this.applyConfig(pending);
    }, delay);
  }

  /** New bundle or revocations: pushed to every proxy now; revoked peers are disconnected. */
  setTrust(trust: TrustState): void {
    this.trust = trust;
    this.trustSnapshot = trustSnapshotOf(trust);
    this.credentials.update(this.options.svid, trust.bundle);
    for (const stream of [...this.streams.values()]) {
      const check = verifyChain(stream.chain, trust);
      if (check.kind !== 'verified') {
        this.close(stream, statusError(GrpcStatus.PERMISSION_DENIED, 'TRELLIS_DISCOVERY_UNAUTHENTICATED', `${check.kind === 'refused' ? check.message : 'no SVID'}; the stream is closed`));
        continue;
      }
      this.refresh(stream);
    }
  }

  /** The control plane's own SVID rotated: new connections get the new certificate. */
  setServingSvid(svid: Svid, bundle: TrustBundle): void {
    this.options.svid = svid;
    this.credentials.update(svid, bundle);
  }

  syncz(): ProxySyncStatus[] {
    return [...this.streams.values()].map((stream) => stream.connection.status()).sort((a, b) => (a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : a.id < b.id ? -1 : 1));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    for (const stream of [...this.streams.values()]) {
      this.close(stream, statusError(GrpcStatus.UNAVAILABLE, 'TRELLIS_DISCOVERY_SHUTDOWN', 'the control plane is shutting down; reconnect later'));
    }
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1_000);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  // ---- config and pushes ----

  private applyConfig(state: ConfigState | undefined): void {
    this.config = state;
    if (state !== undefined) this.options.metrics?.setConfigVersion(state.version);
    if (this.configChangedAt > 0) this.convergence = { since: this.configChangedAt, waiting: new Set(this.streams.keys()) };
    this.configChangedAt = 0;
    this.registry = state === undefined ? undefined : buildRegistry(state.config);
    for (const stream of [...this.streams.values()]) this.refresh(stream);
  }

  /** Recompiles one proxy's snapshot and pushes what changed; closes the stream if it no longer belongs. */
  private refresh(stream: Stream): void {
    const { connection } = stream;
    const workload = this.registry === undefined ? undefined : findWorkload(this.registry, connection.workload);
    if (workload === undefined || this.config === undefined || this.registry === undefined) {
      this.close(stream, statusError(GrpcStatus.NOT_FOUND, 'TRELLIS_UNKNOWN_WORKLOAD', `WorkloadEntry ${connection.workload} was removed from the config`));
      return;
    }
    if (workload.identity !== connection.identity) {
      this.close(stream, statusError(GrpcStatus.PERMISSION_DENIED, 'TRELLIS_DISCOVERY_IDENTITY', `WorkloadEntry ${connection.workload} now runs as ${workload.identity}, not ${connection.identity}`));
      return;
    }
    this.pushStartedAt = performance.now();
    const snapshot = compileSnapshot(this.config.config, this.registry, connection.workload, this.trustSnapshot, this.compileOptions());
    if (snapshot === undefined) return;
    const pushed = connection.update(snapshot, snapshotVersions(snapshot));
    if (pushed.length > 0) this.logger.debug({ event: 'discovery.push', workload: connection.workload, stream: connection.id, types: pushed }, 'pushed');
  }

  /** A proxy's first ACK after a config change: how long the change took to reach it. */
  private converged(streamId: string): void {
    const convergence = this.convergence;
    if (convergence === undefined || !convergence.waiting.delete(streamId)) return;
    this.options.metrics?.recordConvergence((Date.now() - convergence.since) / 1000);
  }

  private compileOptions(): { selectPolicy?: InboundPolicySelector } {
    return this.options.selectPolicy === undefined ? {} : { selectPolicy: this.options.selectPolicy };
  }

  // ---- Discovery.Stream ----

  private handleStream(call: ServerDuplexStream<unknown, DiscoveryResponse>): void {
    const peer = call.getPeer();
    const auth = authenticatePeer(call, this.trust);
    if (auth.kind !== 'verified') {
      const message = auth.kind === 'refused' ? auth.message : 'no client SVID: a proxy must connect with the certificate the mesh CA issued it (bootstrap with a join token first)';
      this.logger.warn({ event: 'discovery.refused', peer, reason: message }, 'discovery stream refused');
      endWithError(call, statusError(GrpcStatus.UNAUTHENTICATED, 'TRELLIS_DISCOVERY_UNAUTHENTICATED', message));
      return;
    }
    let stream: Stream | undefined;
    let ended = false;
    const cleanup = (): void => {
      if (ended) return;
      ended = true;
      if (stream === undefined) return;
      clearTimeout(stream.expiry);
      if (this.streams.get(stream.connection.id) === stream) {
        this.streams.delete(stream.connection.id);
        this.options.metrics?.proxyDisconnected(stream.connection.node.proxyVersion);
        this.logger.info({ event: 'discovery.disconnected', workload: stream.connection.workload, identity: stream.connection.identity, stream: stream.connection.id }, 'proxy disconnected');
      }
    };
    call.on('data', (raw: unknown) => {
      if (ended) return;
      const parsed = parseDiscoveryRequest(raw);
      if (!parsed.ok) {
        if (stream !== undefined) this.close(stream, statusError(GrpcStatus.INVALID_ARGUMENT, 'TRELLIS_DISCOVERY_PROTOCOL', parsed.message));
        else endWithError(call, statusError(GrpcStatus.INVALID_ARGUMENT, 'TRELLIS_DISCOVERY_PROTOCOL', parsed.message));
        return;
      }
      const request = parsed.value;
      if (stream === undefined) {
        stream = this.admit(call, auth, request, peer);
        if (stream === undefined) return;
      } else if (request.node !== undefined && request.node.workload !== stream.connection.workload) {
        this.close(stream, statusError(GrpcStatus.INVALID_ARGUMENT, 'TRELLIS_DISCOVERY_PROTOCOL', `this stream serves ${stream.connection.workload}; open another stream for ${request.node.workload}`));
        return;
      }
      this.pushStartedAt = performance.now();
      const outcome = stream.connection.handleRequest(request);
      const base = { workload: stream.connection.workload, stream: stream.connection.id, type: outcome.type };
      if (outcome.kind === 'nack') this.options.metrics?.recordNack(outcome.type);
      else if (outcome.kind === 'ack') this.converged(stream.connection.id);
      if (outcome.kind === 'nack') {
        this.logger.warn({ event: 'discovery.nack', ...base, version: outcome.version, message: outcome.message }, 'proxy refused a version (NACK); it keeps its previous one');
        this.options.onAudit?.({ kind: 'config', time: new Date().toISOString(), event: 'rejected', proxy: stream.connection.identity, workload: stream.connection.workload, type: outcome.type, version: outcome.version, reason: outcome.message });
      }
      else if (outcome.kind === 'ack') this.logger.debug({ event: 'discovery.ack', ...base, version: outcome.version }, 'ack');
    });
    call.on('end', () => {
      cleanup();
      if (!call.writableEnded && !call.destroyed) call.end();
    });
    call.on('cancelled', cleanup);
    call.on('close', cleanup);
    call.on('error', cleanup);
  }

  /** The first request: which workload, and may this SVID serve it? */
  private admit(call: ServerDuplexStream<unknown, DiscoveryResponse>, auth: { id: SpiffeId; chain: Uint8Array[]; notAfter: Date }, request: DiscoveryRequest, peer: string): Stream | undefined {
    const refuse = (code: GrpcStatus, trellisCode: string, message: string): undefined => {
      this.logger.warn({ event: 'discovery.refused', peer, identity: auth.id.toString(), workload: request.node?.workload, reason: message }, 'discovery stream refused');
      endWithError(call, statusError(code, trellisCode, message));
      return undefined;
    };
    const node = request.node;
    if (node === undefined || node.workload === '') {
      return refuse(GrpcStatus.INVALID_ARGUMENT, 'TRELLIS_DISCOVERY_PROTOCOL', 'the first request on a stream must carry node.workload ("namespace/name" of the WorkloadEntry)');
    }
    const workload = this.registry === undefined ? undefined : findWorkload(this.registry, node.workload);
    if (workload === undefined) {
      return refuse(GrpcStatus.NOT_FOUND, 'TRELLIS_UNKNOWN_WORKLOAD', `no WorkloadEntry ${node.workload} in the config: check the name and namespace, or add the WorkloadEntry`);
    }
    if (workload.identity !== auth.id.toString()) {
      return refuse(GrpcStatus.PERMISSION_DENIED, 'TRELLIS_DISCOVERY_IDENTITY', `SVID ${auth.id.toString()} may not serve WorkloadEntry ${node.workload}, which runs as ${workload.identity}`);
    }
    const id = `${++this.streamIds}`;
    const connection = new ProxyConnection({
      id,
      identity: workload.identity,
      workload: node.workload,
      node,
      peer,
      certificateExpiresAt: auth.notAfter,
      send: (response) => {
        if (call.writableEnded || call.destroyed) {
          this.options.metrics?.recordPushSendError(response.typeUrl);
          return;
        }
        call.write(response);
        this.options.metrics?.recordPush(response.typeUrl, (performance.now() - this.pushStartedAt) / 1000);
      },
      nextNonce: () => `${++this.nonce}`,
    });
    // The stream lives no longer than the certificate that authenticated it.
    const expiry = setTimeout(() => {
      const current = this.streams.get(id);
      if (current) this.close(current, statusError(GrpcStatus.UNAUTHENTICATED, 'TRELLIS_DISCOVERY_UNAUTHENTICATED', 'the SVID this stream was opened with expired; reconnect with the renewed SVID'));
    }, Math.min(MAX_TIMER_MS, Math.max(0, auth.notAfter.getTime() - Date.now())));
    expiry.unref();
    const stream: Stream = { connection, call, chain: auth.chain, expiry };
    this.streams.set(id, stream);
    this.options.metrics?.proxyConnected(node.proxyVersion);
    // Headers now, so the proxy knows it was admitted even when it is already up to date.
    call.sendMetadata(new Metadata());
    this.logger.info({ event: 'discovery.connected', workload: node.workload, identity: workload.identity, stream: id, peer, proxyVersion: node.proxyVersion }, 'proxy connected');
    this.refresh(stream);
    return this.streams.has(id) ? stream : undefined;
  }

  private close(stream: Stream, error: StatusError): void {
    clearTimeout(stream.expiry);
    if (this.streams.delete(stream.connection.id)) {
      this.options.metrics?.proxyDisconnected(stream.connection.node.proxyVersion);
      this.logger.info({ event: 'discovery.closed', workload: stream.connection.workload, identity: stream.connection.identity, stream: stream.connection.id, reason: error.details }, 'proxy stream closed by the control plane');
    }
    endWithError(stream.call, error);
  }

  // ---- Audit ----

  private handleAuditReport(call: ServerUnaryCall<unknown, AuditReportResponse>, callback: sendUnaryData<AuditReportResponse>): void {
    const auth = authenticatePeer(call, this.trust);
    if (auth.kind !== 'verified') {
      return callback(statusError(GrpcStatus.UNAUTHENTICATED, 'TRELLIS_DISCOVERY_UNAUTHENTICATED', auth.kind === 'refused' ? auth.message : 'audit reports need the client SVID of a proxy'));
    }
    const parsed = parseAuditReport(call.request);
    if (!parsed.ok) return callback(statusError(GrpcStatus.INVALID_ARGUMENT, 'TRELLIS_DISCOVERY_PROTOCOL', parsed.message));
    // Who reported is what the connection proved, never what the record claims.
    const reporter = auth.id.toString();
    for (const record of parsed.value.records) this.options.onAudit?.({ ...record, reporter });
    callback(null, { accepted: parsed.value.records.length });
  }

  // ---- Certificates ----

  private async handleCreate(call: ServerUnaryCall<unknown, CreateCertificateResponse>, callback: sendUnaryData<CreateCertificateResponse>): Promise<void> {
    const parsed = parseCreateCertificateRequest(call.request);
    if (!parsed.ok) return callback(statusError(GrpcStatus.INVALID_ARGUMENT, 'TRELLIS_DISCOVERY_PROTOCOL', parsed.message));
    const request = parsed.value;
    const metrics = this.options.metrics;
    metrics?.recordCsr();
    const proof = this.proofOf(call, request.joinToken);
    if ('code' in proof) {
      metrics?.recordAuthenticationFailure();
      return callback(proof);
    }
    try {
      const issued = await this.options.ca.signCsr(request.csrPem, proof, request.ttlSeconds === undefined ? {} : { ttlMs: request.ttlSeconds * 1000 });
      metrics?.recordCertificateIssued(Math.max(0, (issued.notAfter.getTime() - Date.now()) / 1000));
      this.logger.info({ event: 'svid.issued', identity: issued.id.toString(), serial: issued.serial, notAfter: issued.notAfter.toISOString(), via: proof.kind === 'join-token' ? 'join-token' : 'renewal' }, 'certificate issued');
      callback(null, { chainPem: issued.chainPem, bundle: issued.bundle.toSpiffeJson() });
    } catch (err) {
      metrics?.recordSignError(err instanceof CaRefusedError ? err.reason : 'internal');
      callback(this.caFailure(err, 'certificate'));
    }
  }

  /** A join token when the caller has no SVID; its SVID's identity (renewal) when it has one. */
  private proofOf(call: CallerContext, joinToken: string | undefined): IdentityProof | StatusError {
    const auth = authenticatePeer(call, this.trust);
    if (auth.kind === 'refused') return statusError(GrpcStatus.PERMISSION_DENIED, 'TRELLIS_DISCOVERY_UNAUTHENTICATED', auth.message);
    if (auth.kind === 'verified') {
      if (joinToken !== undefined) return statusError(GrpcStatus.INVALID_ARGUMENT, 'TRELLIS_DISCOVERY_PROTOCOL', 'send a join token or a client SVID, not both: renewal uses the SVID alone');
      return { kind: 'authenticated', id: auth.id };
    }
    if (joinToken === undefined) return statusError(GrpcStatus.UNAUTHENTICATED, 'TRELLIS_DISCOVERY_UNAUTHENTICATED', 'no client SVID and no join token: bootstrap with a token from "trellis token create"');
    return { kind: 'join-token', token: joinToken };
  }

  private async handleDescribeToken(call: ServerUnaryCall<unknown, DescribeTokenResponse>, callback: sendUnaryData<DescribeTokenResponse>): Promise<void> {
    const parsed = parseDescribeTokenRequest(call.request);
    if (!parsed.ok) return callback(statusError(GrpcStatus.INVALID_ARGUMENT, 'TRELLIS_DISCOVERY_PROTOCOL', parsed.message));
    try {
      const id = await this.options.ca.joinTokenIdentity(parsed.value.joinToken);
      callback(null, { identity: id.toString() });
    } catch (err) {
      callback(this.caFailure(err, 'join token'));
    }
  }

  private caFailure(err: unknown, what: string): StatusError {
    if (err instanceof CaRefusedError) return statusError(GrpcStatus.PERMISSION_DENIED, err.code, err.message);
    this.logger.error({ event: 'ca.error', err: errorMessage(err) }, `${what} request failed`);
    return statusError(GrpcStatus.INTERNAL, 'TRELLIS_CA_ERROR', `the control plane could not process the ${what} request; see its log`);
  }
}

/** Ends a stream with a status, once: grpc-js sends the status of the first 'error' it sees. */
function endWithError(call: ServerDuplexStream<unknown, DiscoveryResponse>, error: StatusError): void {
  if (call.writableEnded || call.destroyed) return;
  call.emit('error', error);
}

function statusError(code: GrpcStatus, trellisCode: string, message: string): StatusError {
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_METADATA_KEY, trellisCode);
  return { code, details: message, metadata };
}

function trustSnapshotOf(trust: TrustState): TrustSnapshot {
  return { trustDomain: trust.bundle.trustDomain, bundle: trust.bundle.toSpiffeJson(), revocations: trust.revocations.toJson() };
}
