/**
 * The sidecar: inbound listeners (one per workload port), the outbound listeners (HTTP proxy
 * port and explicit upstreams), and the state they read — SVID, trust, policy, services — swapped
 * atomically as the control plane pushes new versions. A version that cannot be applied is
 * refused (NACK) and the previous one stays live.
 */
import type { Logger } from 'pino';
import { TrustBundle } from '../identity/bundle.js';
import { RevocationList } from '../identity/revocation.js';
import type { Svid } from '../identity/svid.js';
import { SpiffeTls } from '../identity/tls.js';
import type { InboundSnapshot, OutboundSnapshot, ProxySnapshot, ResourceType, TrustSnapshot, WorkloadSnapshot } from '../mesh/snapshot.js';
import type { InboundDecision } from '../policy/inbound.js';
import type { JwksProvider } from '../policy/jwt.js';
import type { AppTarget } from './app-forwarder.js';
import { type ConnectionInfo, ConnectionTracker } from './connection.js';
import { InboundListener } from './inbound.js';
import { InboundPolicy } from './inbound-policy.js';
import { JwksCache } from './jwks.js';
import type { L7Request } from './l7/types.js';
import { MeshUpstream } from './mesh-upstream.js';
import { OutboundListener } from './outbound.js';
import { type ResolvedTarget, ServiceResolver } from './service-resolver.js';

export interface UpstreamBinding {
  /** Service host and port, e.g. reviews.default.svc.cluster.local:9080. */
  service: string;
  port: number;
  /** Local port the application connects to. */
  localPort: number;
}

export interface SidecarOptions {
  /** Where local listeners (outbound, admin) bind: loopback. */
  localHost: string;
  /** Inbound listeners bind here; default: the WorkloadEntry address. */
  inboundHost?: string;
  /** The application, per workload port name (or one port for all). */
  app: { host: string; ports: Record<string, number> | number };
  /** HTTP proxy port for the application (HTTP_PROXY); 0 picks a free port; undefined: none. */
  outboundPort?: number;
  upstreams: UpstreamBinding[];
  log: Logger;
  /** Fetches jwksUri key sets; default: a JwksCache with Istio-like timings. */
  jwks?: JwksProvider;
  onDecision?: (request: L7Request, decision: InboundDecision) => void;
  onConnectionDecision?: (connection: ConnectionInfo, decision: InboundDecision) => void;
}

export type ApplyResult = { ok: true } | { ok: false; error: string };

interface State {
  workload?: WorkloadSnapshot;
  inbound?: InboundSnapshot;
  policy?: InboundPolicy;
  outbound?: OutboundSnapshot;
  resolver?: ServiceResolver;
  trust?: TrustSnapshot;
  versions: Partial<Record<ResourceType, string>>;
}

export class Sidecar {
  private readonly options: SidecarOptions;
  private readonly tracker = new ConnectionTracker();
  private readonly upstream: MeshUpstream;
  private readonly jwks: JwksProvider;
  private spiffe: SpiffeTls;
  private state: State = { versions: {} };
  private readonly inbound = new Map<string, InboundListener>();
  private readonly outbound: OutboundListener[] = [];
  private readonly ports: { inbound: Record<string, number>; outbound?: number; upstreams: Record<string, number> } = { inbound: {}, upstreams: {} };
  private svid: Svid;
  private started = false;
  private closing = false;

  constructor(options: SidecarOptions, svid: Svid, bundle: TrustBundle) {
    this.options = options;
    this.svid = svid;
    this.spiffe = new SpiffeTls({ svid, bundle });
    this.upstream = new MeshUpstream(() => this.spiffe);
    this.jwks = options.jwks ?? new JwksCache();
  }

  /** True once identity, trust, inbound and outbound config are all in place and listening. */
  get ready(): boolean {
    return this.started;
  }

  get identity(): Svid {
    return this.svid;
  }

  get listening(): { inbound: Record<string, number>; outbound?: number; upstreams: Record<string, number> } {
    return this.ports;
  }

  get versions(): Partial<Record<ResourceType, string>> {
    return { ...this.state.versions };
  }

  get liveConnections(): number {
    return this.tracker.size;
  }

  /** The applied snapshot, for the admin endpoint's config dump. */
  configDump(): Partial<ProxySnapshot> & { versions: Partial<Record<ResourceType, string>> } {
    const { workload, inbound, outbound, trust, versions } = this.state;
    return { ...(workload ? { workload } : {}), ...(inbound ? { inbound } : {}), ...(outbound ? { outbound } : {}), ...(trust ? { trust } : {}), versions };
  }

  /** A new SVID (renewal) and the bundle that came with it: new connections use them. */
  updateSvid(svid: Svid, bundle: TrustBundle): void {
    this.svid = svid;
    this.spiffe.update({ svid, bundle });
  }

  /** Applies one pushed resource; all-or-nothing per resource type. */
  async apply(type: ResourceType, resource: unknown, version: string): Promise<ApplyResult> {
    try {
      switch (type) {
        case 'workload':
          this.applyWorkload(resource as WorkloadSnapshot);
          break;
        case 'inbound':
          this.applyInbound(resource as InboundSnapshot);
          break;
        case 'outbound':
          this.state = { ...this.state, outbound: resource as OutboundSnapshot, resolver: new ServiceResolver(resource as OutboundSnapshot) };
          break;
        case 'trust':
          this.applyTrust(resource as TrustSnapshot);
          break;
      }
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
    this.state.versions = { ...this.state.versions, [type]: version };
    try {
      await this.reconcileListeners();
    } catch (err) {
      return { ok: false, error: `cannot open listeners: ${(err as Error).message}` };
    }
    return { ok: true };
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.inbound.values()].map((listener) => listener.close()));
    await Promise.all(this.outbound.map((listener) => listener.close()));
    this.tracker.closeAll();
    this.upstream.close();
  }

  private applyWorkload(workload: WorkloadSnapshot): void {
    if (workload.identity !== this.svid.id.toString()) {
      throw new Error(`workload ${workload.namespace}/${workload.name} runs as ${workload.identity}, but this proxy holds ${this.svid.id.toString()}`);
    }
    this.state = { ...this.state, workload };
  }

  private applyInbound(inbound: InboundSnapshot): void {
    const workload = this.state.workload;
    if (!workload) throw new Error('inbound config arrived before the workload config');
    for (const port of inbound.ports) {
      if (this.appTarget(port.name) === undefined) throw new Error(`no application port given for workload port "${port.name}" (${port.port})`);
    }
    // Compile first: a policy that fails to compile leaves the old one in place.
    const policy = new InboundPolicy(inbound.policy, this.jwks);
    this.state = { ...this.state, inbound, policy };
    for (const port of inbound.ports) this.inbound.get(port.name)?.update(port);
  }

  private applyTrust(trust: TrustSnapshot): void {
    const bundle = TrustBundle.fromSpiffeJson(trust.trustDomain, trust.bundle);
    if (bundle.roots.length === 0) throw new Error('the trust bundle has no roots');
    const revocations = RevocationList.fromJson(trust.revocations);
    const previous = this.spiffe.revocations;
    this.spiffe.update({ bundle, revocations });
    this.state = { ...this.state, trust };
    if (revocations.sequence !== previous.sequence) {
      // A revocation takes effect on live connections, not only on new ones.
      const closed = this.tracker.closeWhere(
        (info) => info.peer !== undefined && (revocations.isSerialRevoked(info.peer.serial) || revocations.isIdentityRevoked(info.peer.identity.toString())),
      );
      this.upstream.reset();
      if (closed > 0) this.options.log.info({ event: 'revocation.closed_connections', closed }, `closed ${closed} connection(s) of revoked peers`);
    }
  }

  private appTarget(portName: string): AppTarget | undefined {
    const ports = this.options.app.ports;
    const port = typeof ports === 'number' ? ports : ports[portName];
    return port === undefined ? undefined : { host: this.options.app.host, port };
  }

  /** Opens listeners once everything they need is known, and follows port changes after. */
  private async reconcileListeners(): Promise<void> {
    const { workload, inbound, policy, resolver, trust } = this.state;
    if (this.closing || !workload || !inbound || !policy || !resolver || !trust) return;
    const wanted = new Map(inbound.ports.map((port) => [port.name, port]));
    for (const [name, listener] of this.inbound) {
      if (wanted.get(name)?.port === this.ports.inbound[name]) continue;
      await listener.close();
      this.inbound.delete(name);
      delete this.ports.inbound[name];
    }
    for (const port of inbound.ports) {
      if (this.inbound.has(port.name)) continue;
      const listener = new InboundListener(port, this.appTarget(port.name) as AppTarget, {
        tls: () => this.spiffe,
        policy: () => this.state.policy as InboundPolicy,
        ownIdentity: () => this.svid.id.toString(),
        tracker: this.tracker,
        log: this.options.log,
        ...(this.options.onDecision ? { onDecision: this.options.onDecision } : {}),
        ...(this.options.onConnectionDecision ? { onConnectionDecision: this.options.onConnectionDecision } : {}),
      });
      this.ports.inbound[port.name] = await listener.listen(this.options.inboundHost ?? workload.address);
      this.inbound.set(port.name, listener);
    }
    if (!this.started) {
      await this.openOutbound();
      this.started = true;
      this.options.log.info({ event: 'sidecar.ready', workload: `${workload.namespace}/${workload.name}`, identity: workload.identity, ports: this.ports }, 'sidecar ready');
    }
  }

  private async openOutbound(): Promise<void> {
    const deps = { resolver: () => this.state.resolver as ServiceResolver, upstream: this.upstream, tracker: this.tracker, log: this.options.log };
    if (this.options.outboundPort !== undefined) {
      const listener = new OutboundListener(this.options.outboundPort, deps);
      this.ports.outbound = await listener.listen(this.options.localHost);
      this.outbound.push(listener);
    }
    for (const binding of this.options.upstreams) {
      const fixed = (): ResolvedTarget | undefined => this.state.resolver?.resolve(`${binding.service}:${binding.port}`, binding.port);
      const listener = new OutboundListener(binding.localPort, deps, fixed);
      this.ports.upstreams[`${binding.service}:${binding.port}`] = await listener.listen(this.options.localHost);
      this.outbound.push(listener);
    }
  }
}
