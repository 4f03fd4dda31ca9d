/**
 * The proxy's side of the discovery protocol (src/mesh/discovery-protocol.ts).
 *
 *   bootstrap   DescribeToken(join token) → identity; key + CSR generated here; Certificates.Create
 *               with the token, over TLS that verifies the control plane's SVID against the
 *               bundle file the operator provided
 *   renewal     SvidRotator, Certificates.Create over mTLS with the current SVID
 *   discovery   Discovery.Stream over mTLS: subscribe to the four resource types, hand each
 *               pushed resource to `apply`, ACK what applied and NACK what did not
 *
 * Use: `await client.start()`, or `await client.bootstrap()` (SVID only), build the proxy
 * around the SVID, then `client.connect()`. Events: 'svid', 'connected', 'disconnected',
 * 'snapshot', 'nack', 'warning'.
 *
 * Every connection checks that the server holds the control plane's identity
 * (spiffe://<td>/ns/<root namespace>/sa/trellis-controlplane) under the current bundle and
 * revocations. When the control plane is unreachable the client keeps its last good snapshot
 * and SVID (fail static) and reconnects with capped exponential backoff and jitter; on
 * reconnect it tells the server which versions it holds, so nothing is re-applied needlessly.
 */
import { ChannelCredentials, Client, type ClientDuplexStream, Metadata, type ServiceError, status as GrpcStatus } from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createSecureContext, type PeerCertificate } from 'node:tls';
import type { Logger } from 'pino';
import { errorMessage, TrellisError } from '../api/errors.js';
import { TrustBundle } from '../identity/bundle.js';
import { RevocationList } from '../identity/revocation.js';
import { SvidRotator } from '../identity/rotation.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import type { Svid } from '../identity/svid.js';
import { MESH_TLS_MIN_VERSION, peerChain } from '../identity/tls.js';
import { verifySvid } from '../identity/verify.js';
import { parseCertificatesPem } from '../identity/x509.js';
import {
  AUDIT_METHODS,
  type AuditReportRequest,
  CERTIFICATE_METHODS,
  controlPlaneIdentity,
  type CreateCertificateRequest,
  type CreateCertificateResponse,
  DISCOVERY_METHODS,
  type DiscoveryRequest,
  type DiscoveryResponse,
  ERROR_CODE_METADATA_KEY,
  INTERMEDIATES_METADATA_KEY,
  type NodeInfo,
} from '../mesh/discovery-protocol.js';
import { type ProxySnapshot, RESOURCE_TYPES, type ResourceType, type TrustSnapshot, type WorkloadSnapshot } from '../mesh/snapshot.js';

/** What `apply` returns: ok → ACK; an error → NACK, and the previous version stays live. */
export type ApplyResult = { ok: true } | { ok: false; error: string };

/** Applies one resource atomically. Throwing counts as `{ ok: false }`. Returning nothing counts as ok. */
export type ApplyResource = <T extends ResourceType>(type: T, resource: ProxySnapshot[T], version: string) => ApplyResult | void | Promise<ApplyResult | void>;

export interface DiscoveryClientOptions {
  /** `host:port` of the control plane's discovery port. */
  address: string;
  /** `namespace/name` of the WorkloadEntry this proxy serves. */
  workload: string;
  /** The bundle to trust the control plane with: a PEM or SPIFFE-JSON file (e.g. <state>/ca/bundle.pem), or a bundle. */
  bundle: TrustBundle | string;
  /** Trust domain of the mesh (default cluster.local); ignored when `bundle` is a TrustBundle. */
  trustDomain?: string;
  /** Root namespace of the mesh (default istio-system): the control plane's identity lives there. */
  rootNamespace?: string;
  /** Overrides the control plane identity derived from trustDomain and rootNamespace. */
  controlPlaneIdentity?: string;
  /** Single-use token from `trellis token create`; needed unless `svid` is still valid. */
  joinToken?: string;
  /** An SVID kept from a previous run: used while valid, then renewed over mTLS. */
  svid?: { svid: Svid; bundle: TrustBundle };
  /** Requested SVID lifetime; the CA's default (1h) when absent. */
  svidTtlSeconds?: number;
  apply: ApplyResource;
  proxyVersion?: string;
  /** `host:port` of this proxy's Prometheus metrics, reported in the node metadata (for `trellis top`). */
  metricsAddress?: string;
  /** Reconnect backoff: first delay and cap (defaults 500 ms and 30 s), with jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Deadline of unary calls (default 10 s). */
  callTimeoutMs?: number;
  logger?: Logger;
  random?: () => number;
}

export interface DiscoveryClientEvents {
  /** The discovery stream is open and the control plane accepted this proxy. */
  connected: [info: { address: string; controlPlane: string }];
  /** The stream ended; the last good snapshot and SVID stay in use. */
  disconnected: [info: { error?: Error; retryInMs: number }];
  /** A new SVID (bootstrap or renewal). */
  svid: [svid: Svid, bundle: TrustBundle];
  /** A resource was applied (and ACKed). `snapshot` holds every type received so far. */
  snapshot: [snapshot: Partial<ProxySnapshot>, update: { type: ResourceType; version: string }];
  /** A resource was refused by `apply` (or by the client's own checks) and NACKed. */
  nack: [update: { type: ResourceType; version: string; message: string }];
  /** Something went wrong that the client handles itself (renewal failure, bad message…). */
  warning: [error: Error];
}

/** Starts every message of a failed server check; gRPC reports the handshake error only as text. */
const CONTROL_PLANE_CHECK = 'control plane identity check failed';

/** SNI sent to the control plane (an IP address is not a valid server name). */
const SERVER_NAME = 'trellis-controlplane';

export class DiscoveryClient extends EventEmitter<DiscoveryClientEvents> {
  private readonly options: DiscoveryClientOptions;
  private readonly controlPlane: string;
  private readonly node: NodeInfo;
  private bundle: TrustBundle;
  private revocations = RevocationList.EMPTY;
  private rotator: SvidRotator | undefined;
  private joinToken: string | undefined;
  private mtlsClient: Client | undefined;
  private stream: ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> | undefined;
  private isConnected = false;
  private streamWanted = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private readonly parts: Partial<ProxySnapshot> = {};
  private readonly appliedVersions: Partial<Record<ResourceType, string>> = {};
  /** Responses are applied one at a time, in order. */
  private applying: Promise<void> = Promise.resolve();

  constructor(options: DiscoveryClientOptions) {
    super();
    this.options = options;
    this.bundle = loadBundle(options.bundle, options.trustDomain);
    this.controlPlane = options.controlPlaneIdentity ?? controlPlaneIdentity(this.bundle.trustDomain, options.rootNamespace ?? 'istio-system');
    SpiffeId.parse(this.controlPlane);
    this.joinToken = options.joinToken;
    this.node = {
      workload: options.workload,
      proxyVersion: options.proxyVersion ?? 'trellis-0.1.0',
      hostname: hostname(),
      pid: process.pid,
      ...(options.metricsAddress === undefined ? {} : { metrics: options.metricsAddress }),
    };
  }

  /** `bootstrap()` then `connect()`. */
  async start(): Promise<Svid> {
    const svid = await this.bootstrap();
    this.connect();
    return svid;
  }

  /**
   * Obtains an SVID (with the join token, or the still-valid one given) and starts keeping it
   * fresh; opens no stream yet, so a proxy can build what `apply` needs around the SVID first.
   */
  async bootstrap(): Promise<Svid> {
    if (this.rotator) throw new Error('DiscoveryClient: already bootstrapped');
    const initial = this.options.svid;
    const usable = initial !== undefined && initial.svid.notAfter.getTime() > Date.now();
    let id: SpiffeId;
    if (usable) {
      id = initial.svid.id;
    } else {
      if (this.joinToken === undefined) {
        throw new TrellisError('TRELLIS_BOOTSTRAP', `proxy for ${this.options.workload} has no valid SVID and no join token: create one with "trellis token create --state DIR --workload ${this.options.workload}"`, { exitCode: 2 });
      }
      id = await this.describeToken(this.joinToken);
    }
    const rotator = new SvidRotator({ id, sign: (csrPem) => this.sign(csrPem) });
    this.rotator = rotator;
    rotator.on('rotated', (svid, bundle) => this.onRotated(svid, bundle));
    rotator.on('renewalFailed', (error, attempt, retryInMs) => {
      this.options.logger?.warn({ event: 'svid.renewal-failed', err: error.message, attempt, retryInMs }, 'SVID renewal failed; the current SVID stays in use');
      this.emit('warning', error);
    });
    let svid: Svid;
    try {
      svid = await rotator.start(usable ? initial : undefined);
    } catch (err) {
      // No SVID at all: give up rather than retry in the background; the caller decides.
      rotator.stop();
      this.rotator = undefined;
      throw err;
    }
    if (usable) this.onRotated(svid, initial.bundle);
    return svid;
  }

  /** Opens the discovery stream (after `bootstrap()`), and keeps it open until `stop()`. */
  connect(): void {
    if (this.mtlsClient === undefined) throw new Error('DiscoveryClient: bootstrap() first');
    if (this.streamWanted || this.stopped) return;
    this.streamWanted = true;
    this.restartStream();
  }

  /** Resolves with the full snapshot once all four types have been applied. */
  waitForSnapshot(timeoutMs = 10_000): Promise<ProxySnapshot> {
    const ready = this.snapshot;
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('snapshot', onSnapshot);
        reject(new TrellisError('TRELLIS_DISCOVERY_TIMEOUT', `no complete snapshot from ${this.options.address} within ${timeoutMs} ms: check that the control plane runs and knows WorkloadEntry ${this.options.workload}`));
      }, timeoutMs);
      const onSnapshot = (): void => {
        const snapshot = this.snapshot;
        if (!snapshot) return;
        clearTimeout(timer);
        this.off('snapshot', onSnapshot);
        resolve(snapshot);
      };
      this.on('snapshot', onSnapshot);
    });
  }

  /** The last good snapshot, once every type has arrived. */
  get snapshot(): ProxySnapshot | undefined {
    const { workload, inbound, outbound, trust } = this.parts;
    return workload && inbound && outbound && trust ? { workload, inbound, outbound, trust } : undefined;
  }

  /** The version applied per type. */
  get versions(): Partial<Record<ResourceType, string>> {
    return { ...this.appliedVersions };
  }

  get svid(): Svid | undefined {
    try {
      return this.rotator?.current;
    } catch {
      return undefined;
    }
  }

  get trustBundle(): TrustBundle {
    return this.bundle;
  }

  get revocationList(): RevocationList {
    return this.revocations;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  /** Renews the SVID now (over mTLS); the current one stays on failure. */
  async renewNow(): Promise<void> {
    await this.rotator?.renewNow();
  }

  /**
   * Sends audit records to the control plane over the SVID-authenticated channel. Rejects when
   * there is no channel yet or the call fails (the caller retries or counts the loss).
   */
  async reportAudit(records: unknown[]): Promise<void> {
    const client = this.mtlsClient;
    if (client === undefined || this.stopped) throw new TrellisError('TRELLIS_DISCOVERY_UNAVAILABLE', 'no channel to the control plane yet');
    await this.unary(client, AUDIT_METHODS.Report, { records });
  }

  stop(): void {
    this.stopped = true;
    this.rotator?.stop();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    this.mtlsClient?.close();
    this.mtlsClient = undefined;
    this.isConnected = false;
  }

  // ---- certificates ----

  private async describeToken(token: string): Promise<SpiffeId> {
    const client = this.makeClient(undefined);
    try {
      const response = await this.unary(client, CERTIFICATE_METHODS.DescribeToken, { joinToken: token });
      const id = SpiffeId.parse(String(response.identity));
      if (!id.memberOf(this.bundle.trustDomain)) {
        throw new TrellisError('TRELLIS_BOOTSTRAP', `the join token is for ${id.toString()}, outside the trust domain ${this.bundle.trustDomain} of the bundle`);
      }
      return id;
    } finally {
      client.close();
    }
  }

  /** The rotator's signer: the join token the first time, the current SVID afterwards. */
  private async sign(csrPem: string): Promise<{ chainPem: string; bundle: TrustBundle }> {
    const ttl = this.options.svidTtlSeconds === undefined ? {} : { ttlSeconds: this.options.svidTtlSeconds };
    let response: CreateCertificateResponse;
    if (this.mtlsClient === undefined) {
      if (this.joinToken === undefined) throw new TrellisError('TRELLIS_BOOTSTRAP', 'no SVID and no join token left to obtain one');
      const token = this.joinToken;
      // Single use: the CA consumes the token on any attempt.
      this.joinToken = undefined;
      const client = this.makeClient(undefined);
      try {
        response = await this.unary(client, CERTIFICATE_METHODS.Create, { csrPem, joinToken: token, ...ttl });
      } finally {
        client.close();
      }
    } else {
      response = await this.unary(this.mtlsClient, CERTIFICATE_METHODS.Create, { csrPem, ...ttl });
    }
    return { chainPem: String(response.chainPem), bundle: TrustBundle.fromSpiffeJson(this.bundle.trustDomain, response.bundle) };
  }

  private onRotated(svid: Svid, bundle: TrustBundle): void {
    this.bundle = bundle;
    this.options.logger?.info({ event: 'svid.rotated', identity: svid.id.toString(), serial: svid.leaf.serialNumber, notAfter: svid.notAfter.toISOString() }, 'SVID obtained');
    this.replaceMtlsClient();
    this.emit('svid', svid, bundle);
    // New streams use the new SVID; the server would close the old one when its certificate expires.
    if (this.streamWanted && !this.stopped) this.restartStream();
  }

  // ---- discovery stream ----

  private restartStream(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const previous = this.stream;
    this.stream = undefined;
    previous?.cancel();
    this.openStream();
  }

  private openStream(): void {
    const client = this.mtlsClient;
    if (this.stopped || client === undefined) return;
    const method = DISCOVERY_METHODS.Stream;
    const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, this.callMetadata());
    this.stream = call;
    call.on('metadata', () => {
      if (call !== this.stream) return;
      this.isConnected = true;
      this.failures = 0;
      this.options.logger?.info({ event: 'discovery.connected', address: this.options.address }, 'connected to the control plane');
      this.emit('connected', { address: this.options.address, controlPlane: this.controlPlane });
    });
    call.on('data', (response: DiscoveryResponse) => {
      this.applying = this.applying
        .then(() => this.onResponse(call, response))
        // One failed response must not stall the ones after it.
        .catch((err: unknown) => {
          this.emit('warning', err instanceof Error ? err : new Error(errorMessage(err)));
        });
    });
    call.on('error', (err: ServiceError) => this.onStreamEnd(call, err));
    call.on('end', () => this.onStreamEnd(call, undefined));
    RESOURCE_TYPES.forEach((type, index) => {
      call.write({ ...(index === 0 ? { node: this.node } : {}), typeUrl: type, versionInfo: this.appliedVersions[type] ?? '', responseNonce: '' });
    });
  }

  private onStreamEnd(call: ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>, err: ServiceError | undefined): void {
    if (call !== this.stream) return;
    this.stream = undefined;
    this.isConnected = false;
    if (this.stopped) return;
    const retryInMs = this.backoff();
    const error = err === undefined ? new TrellisError('TRELLIS_DISCOVERY_UNAVAILABLE', 'the control plane ended the stream') : toTrellisError(err);
    this.options.logger?.warn({ event: 'discovery.disconnected', err: error.message, retryInMs }, 'discovery stream ended; keeping the last snapshot and reconnecting');
    this.emit('disconnected', { error, retryInMs });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.openStream();
    }, retryInMs);
  }

  private async onResponse(call: ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>, response: DiscoveryResponse): Promise<void> {
    if (call !== this.stream) return;
    if (!isResponse(response)) {
      this.emit('warning', new TrellisError('TRELLIS_DISCOVERY_PROTOCOL', 'the control plane sent a malformed discovery response; it is ignored'));
      return;
    }
    const { typeUrl: type, versionInfo: version, nonce } = response;
    const result = await this.applyResource(type, response.resource, version);
    if (call !== this.stream) return;
    if (result.ok) {
      this.appliedVersions[type] = version;
      call.write({ typeUrl: type, versionInfo: version, responseNonce: nonce });
      this.emit('snapshot', { ...this.parts }, { type, version });
    } else {
      this.options.logger?.warn({ event: 'discovery.nack', type, version, message: result.error }, 'refused a pushed version (NACK); keeping the previous one');
      call.write({ typeUrl: type, versionInfo: this.appliedVersions[type] ?? '', responseNonce: nonce, errorDetail: { message: result.error } });
      this.emit('nack', { type, version, message: result.error });
    }
  }

  /** The client's own checks, then the caller's `apply`; state changes only if both succeed. */
  private async applyResource(type: ResourceType, resource: unknown, version: string): Promise<ApplyResult> {
    let trust: { bundle: TrustBundle; revocations: RevocationList } | undefined;
    try {
      if (type === 'trust') trust = parseTrust(resource, this.bundle.trustDomain);
      if (type === 'workload') this.checkWorkload(resource);
      const outcome = await this.options.apply(type, resource as ProxySnapshot[typeof type], version);
      if (outcome !== undefined && !outcome.ok) return outcome;
    } catch (err) {
      return { ok: false, error: errorMessage(err) };
    }
    (this.parts as Record<ResourceType, unknown>)[type] = resource;
    if (trust) {
      const bundleChanged = trust.bundle.toPem() !== this.bundle.toPem();
      this.bundle = trust.bundle;
      this.revocations = trust.revocations;
      // Later connections verify the control plane against the new roots.
      if (bundleChanged) this.replaceMtlsClient();
    }
    return { ok: true };
  }

  private checkWorkload(resource: unknown): void {
    const workload = resource as Partial<WorkloadSnapshot> | null;
    const own = this.svid?.id.toString();
    if (typeof workload?.identity !== 'string' || workload.identity !== own) {
      throw new Error(`the workload snapshot is for identity ${String(workload?.identity)}, but this proxy holds ${own ?? 'no SVID'}`);
    }
  }

  private backoff(): number {
    const initial = this.options.backoff?.initialMs ?? 500;
    const max = this.options.backoff?.maxMs ?? 30_000;
    const ceiling = Math.min(max, initial * 2 ** Math.min(this.failures, 20));
    this.failures += 1;
    const random = this.options.random ?? Math.random;
    // Equal jitter: at least half the ceiling, so a fleet spreads out but still backs off.
    return Math.round(ceiling / 2 + random() * (ceiling / 2));
  }

  // ---- channels ----

  private replaceMtlsClient(): void {
    const svid = this.svid;
    if (svid === undefined || this.stopped) return;
    const previous = this.mtlsClient;
    this.mtlsClient = this.makeClient(svid);
    // Calls in flight on the old channel finish first.
    if (previous) setTimeout(() => previous.close(), 5_000).unref();
  }

  /** A channel to the control plane, with the SVID as client certificate when given. */
  private makeClient(svid: Svid | undefined): Client {
    const context = createSecureContext({
      ca: this.bundle.toPem(),
      minVersion: MESH_TLS_MIN_VERSION,
      ...(svid ? { key: svid.keyPem, cert: svid.chainPem } : {}),
    });
    const credentials = ChannelCredentials.createFromSecureContext(context, { checkServerIdentity: (_host, cert) => this.checkControlPlane(cert) });
    return new Client(this.options.address, credentials, {
      'grpc.ssl_target_name_override': SERVER_NAME,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.initial_reconnect_backoff_ms': this.options.backoff?.initialMs ?? 500,
      'grpc.max_reconnect_backoff_ms': this.options.backoff?.maxMs ?? 30_000,
    });
  }

  /** The server must hold the control plane's SVID under the current bundle and revocations. */
  private checkControlPlane(cert: PeerCertificate): Error | undefined {
    const result = verifySvid(peerChain(cert), this.bundle, this.revocations, { purpose: 'server' });
    if (!result.ok) return new TrellisError('TRELLIS_CONTROL_PLANE_IDENTITY', `${CONTROL_PLANE_CHECK}: its certificate is rejected: ${result.reason}: ${result.message}`);
    if (result.id.toString() !== this.controlPlane) {
      return new TrellisError('TRELLIS_CONTROL_PLANE_IDENTITY', `${CONTROL_PLANE_CHECK}: the server at ${this.options.address} is ${result.id.toString()}, not ${this.controlPlane}`);
    }
    return undefined;
  }

  /** Intermediates of the SVID chain, for servers that see only the TLS leaf. */
  private callMetadata(): Metadata {
    const metadata = new Metadata();
    const svid = this.svid;
    if (svid) {
      for (const cert of parseCertificatesPem(svid.chainPem, 'SVID chain').slice(1)) metadata.add(INTERMEDIATES_METADATA_KEY, Buffer.from(cert.rawData));
    }
    return metadata;
  }

  private unary<Req extends CreateCertificateRequest | { joinToken: string } | AuditReportRequest, Res>(
    client: Client,
    method: { path: string; requestSerialize: (value: Req) => Buffer; responseDeserialize: (value: Buffer) => Res },
    request: Req,
  ): Promise<Res> {
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        this.callMetadata(),
        { deadline: Date.now() + (this.options.callTimeoutMs ?? 10_000) },
        (err, response) => (err ? reject(toTrellisError(err)) : response === undefined ? reject(new TrellisError('TRELLIS_DISCOVERY_PROTOCOL', 'empty response')) : resolve(response)),
      );
    });
  }
}

/** A gRPC error as a TrellisError carrying the server's code (or a transport code). */
export function toTrellisError(err: ServiceError): TrellisError {
  const code = err.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
  const trellisCode =
    typeof code === 'string'
      ? code
      : (err.details ?? '').includes(CONTROL_PLANE_CHECK)
        ? 'TRELLIS_CONTROL_PLANE_IDENTITY'
        : err.code === GrpcStatus.UNAVAILABLE || err.code === GrpcStatus.DEADLINE_EXCEEDED
          ? 'TRELLIS_DISCOVERY_UNAVAILABLE'
          : 'TRELLIS_DISCOVERY_ERROR';
  return new TrellisError(trellisCode, err.details || err.message, { grpcStatus: err.code });
}

function loadBundle(bundle: TrustBundle | string, trustDomain: string | undefined): TrustBundle {
  if (bundle instanceof TrustBundle) return bundle;
  let text: string;
  try {
    text = readFileSync(bundle, 'utf8');
  } catch (err) {
    throw new TrellisError('TRELLIS_BUNDLE_FILE', `cannot read the trust bundle ${bundle}: ${errorMessage(err)} (the control plane writes it to <state>/ca/bundle.pem)`, { exitCode: 2 });
  }
  const domain = trustDomain ?? 'cluster.local';
  return text.trimStart().startsWith('{') ? TrustBundle.fromSpiffeJson(domain, text) : TrustBundle.fromPem(domain, text);
}

function parseTrust(resource: unknown, trustDomain: string): { bundle: TrustBundle; revocations: RevocationList } {
  const trust = resource as Partial<TrustSnapshot> | null;
  if (trust?.trustDomain !== trustDomain) throw new Error(`trust snapshot for trust domain ${String(trust?.trustDomain)}, expected ${trustDomain}`);
  const revocations = trust.revocations;
  if (!revocations || !Array.isArray(revocations.serials) || !Array.isArray(revocations.identities) || typeof revocations.sequence !== 'number') {
    throw new Error('trust snapshot: malformed revocation list');
  }
  const bundle = TrustBundle.fromSpiffeJson(trustDomain, trust.bundle ?? { keys: [] });
  if (bundle.roots.length === 0) throw new Error('trust snapshot: the bundle has no X.509 roots');
  return { bundle, revocations: RevocationList.fromJson(revocations) };
}

function isResponse(value: unknown): value is DiscoveryResponse {
  const response = value as Partial<DiscoveryResponse> | null;
  return (
    typeof response === 'object' &&
    response !== null &&
    typeof response.typeUrl === 'string' &&
    (RESOURCE_TYPES as readonly string[]).includes(response.typeUrl) &&
    typeof response.versionInfo === 'string' &&
    typeof response.nonce === 'string'
  );
}
