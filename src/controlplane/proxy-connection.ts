/**
 * One proxy's discovery stream, as a state machine with xDS semantics and no gRPC in it:
 * per resource type the version last pushed (with its nonce), the version last acknowledged,
 * and the last refusal (NACK). A NACK leaves the acknowledged version live on the proxy; the
 * refused version is not sent again, only a newer one.
 */
import type { DiscoveryRequest, DiscoveryResponse, NodeInfo } from '../mesh/discovery-protocol.js';
import type { ResourceVersions } from '../mesh/compile.js';
import { type ProxySnapshot, RESOURCE_TYPES, type ResourceType } from '../mesh/snapshot.js';

export interface TypeSyncState {
  subscribed: boolean;
  /** What the proxy was last sent (or said it already had when subscribing). */
  sent?: { version: string; nonce: string; at: Date };
  acked?: { version: string; at: Date };
  nack?: { version: string; message: string; at: Date };
}

export type SyncStatus = 'SYNCED' | 'NACKED' | 'STALE' | 'NOT_SENT';

/** One proxy in `/debug/syncz` and `trellis proxy-status`. */
export interface ProxySyncStatus {
  id: string;
  identity: string;
  workload: string;
  proxyVersion: string;
  hostname?: string;
  pid?: number;
  /** `host:port` of the proxy's Prometheus metrics, as it reported them. */
  metrics?: string;
  peer: string;
  connectedAt: string;
  certificateExpiresAt: string;
  types: Record<ResourceType, {
    status: SyncStatus;
    /** The version the control plane wants this proxy to run. */
    current?: string;
    pushed?: string;
    pushedAt?: string;
    acked?: string;
    ackedAt?: string;
    nack?: { version: string; message: string; at: string };
  }>;
}

export type RequestOutcome =
  | { kind: 'subscribed'; type: ResourceType; upToDate: boolean }
  | { kind: 'ack'; type: ResourceType; version: string }
  | { kind: 'nack'; type: ResourceType; version: string; message: string }
  | { kind: 'stale'; type: ResourceType };

export interface ProxyConnectionInit {
  id: string;
  identity: string;
  workload: string;
  node: NodeInfo;
  peer: string;
  certificateExpiresAt: Date;
  send: (response: DiscoveryResponse) => void;
  nextNonce: () => string;
  now?: () => Date;
}

export class ProxyConnection {
  readonly id: string;
  readonly identity: string;
  readonly workload: string;
  readonly node: NodeInfo;
  readonly peer: string;
  readonly connectedAt: Date;
  certificateExpiresAt: Date;
  private readonly send: (response: DiscoveryResponse) => void;
  private readonly nextNonce: () => string;
  private readonly now: () => Date;
  private snapshot: ProxySnapshot | undefined;
  private versions: ResourceVersions | undefined;
  private readonly types = Object.fromEntries(RESOURCE_TYPES.map((type) => [type, { subscribed: false }])) as Record<ResourceType, TypeSyncState>;

  constructor(init: ProxyConnectionInit) {
    this.id = init.id;
    this.identity = init.identity;
    this.workload = init.workload;
    this.node = init.node;
    this.peer = init.peer;
    this.certificateExpiresAt = init.certificateExpiresAt;
    this.send = init.send;
    this.nextNonce = init.nextNonce;
    this.now = init.now ?? (() => new Date());
    this.connectedAt = this.now();
  }

  /** Sets what the proxy should run and pushes the subscribed types whose content changed. */
  update(snapshot: ProxySnapshot, versions: ResourceVersions): ResourceType[] {
    this.snapshot = snapshot;
    this.versions = versions;
    return RESOURCE_TYPES.filter((type) => this.pushIfChanged(type));
  }

  handleRequest(request: DiscoveryRequest): RequestOutcome {
    const type = request.typeUrl;
    const state = this.types[type];
    if (request.responseNonce === '') {
      state.subscribed = true;
      const current = this.versions?.[type];
      // A reconnecting proxy that already runs the current version needs nothing.
      if (current !== undefined && request.versionInfo === current) {
        const at = this.now();
        state.sent = { version: current, nonce: '', at };
        state.acked = { version: current, at };
        return { kind: 'subscribed', type, upToDate: true };
      }
      this.pushIfChanged(type);
      return { kind: 'subscribed', type, upToDate: false };
    }
    // Only the answer to the latest push counts; earlier nonces are superseded.
    if (state.sent === undefined || request.responseNonce !== state.sent.nonce) return { kind: 'stale', type };
    if (request.errorDetail !== undefined) {
      state.nack = { version: state.sent.version, message: request.errorDetail.message, at: this.now() };
      return { kind: 'nack', type, version: state.sent.version, message: request.errorDetail.message };
    }
    state.acked = { version: state.sent.version, at: this.now() };
    return { kind: 'ack', type, version: state.sent.version };
  }

  status(): ProxySyncStatus {
    const types = {} as ProxySyncStatus['types'];
    for (const type of RESOURCE_TYPES) {
      const state = this.types[type];
      const current = this.versions?.[type];
      const status: SyncStatus =
        state.sent === undefined
          ? 'NOT_SENT'
          : state.nack !== undefined && state.nack.version === state.sent.version
            ? 'NACKED'
            : state.acked?.version === state.sent.version
              ? 'SYNCED'
              : 'STALE';
      types[type] = {
        status,
        ...(current === undefined ? {} : { current }),
        ...(state.sent ? { pushed: state.sent.version, pushedAt: state.sent.at.toISOString() } : {}),
        ...(state.acked ? { acked: state.acked.version, ackedAt: state.acked.at.toISOString() } : {}),
        ...(state.nack ? { nack: { version: state.nack.version, message: state.nack.message, at: state.nack.at.toISOString() } } : {}),
      };
    }
    return {
      id: this.id,
      identity: this.identity,
      workload: this.workload,
      proxyVersion: this.node.proxyVersion,
      ...(this.node.hostname === undefined ? {} : { hostname: this.node.hostname }),
      ...(this.node.pid === undefined ? {} : { pid: this.node.pid }),
      ...(this.node.metrics === undefined ? {} : { metrics: this.node.metrics }),
      peer: this.peer,
      connectedAt: this.connectedAt.toISOString(),
      certificateExpiresAt: this.certificateExpiresAt.toISOString(),
      types,
    };
  }

  private pushIfChanged(type: ResourceType): boolean {
    const state = this.types[type];
    const version = this.versions?.[type];
    if (!state.subscribed || this.snapshot === undefined || version === undefined || state.sent?.version === version) return false;
    const nonce = this.nextNonce();
    state.sent = { version, nonce, at: this.now() };
    this.send({ typeUrl: type, versionInfo: version, nonce, resource: this.snapshot[type] });
    return true;
  }
}
