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
import type { ProxyTracer } from '../telemetry/tracing.js';
import { LocalRateLimiter, TrafficState } from '../traffic/index.js';
import type { AppTarget } from './app-forwarder.js';
import { type ConnectionInfo, ConnectionTracker } from './connection.js';
import { InboundListener } from './inbound.js';
import { InboundPolicy } from './inbound-policy.js';
import { JwksCache } from './jwks.js';
import type { L7Request } from './l7/types.js';
import { defaultTraffic } from './default-traffic.js';
import { ExternalUpstream } from './external-upstream.js';
import { MeshUpstream } from './mesh-upstream.js';
import { OutboundListener } from './outbound.js';
import { type ResolvedTarget, ServiceResolver } from './service-resolver.js';
import type { DataPlaneTelemetry } from './telemetry.js';

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
  /** Spans for inbound and outbound requests; the sidecar flushes and stops it in close(). */
  tracer?: ProxyTracer;
  /** Fetches jwksUri key sets; default: a JwksCache with Istio-like timings. */
  jwks?: JwksProvider;
  onDecision?: (request: L7Request, decision: InboundDecision) => void;
  onConnectionDecision?: (connection: ConnectionInfo, decision: InboundDecision) => void;
  /** Metrics and access log (and the peer metadata header); absent: nothing is measured. */
  telemetry?: DataPlaneTelemetry;
}

export type ApplyResult = { ok: true } | { ok: false; error: string };

interface ListenerPlan {
  opened: Map<string, { listener: InboundListener; port: number }>;
  obsolete: Map<string, InboundListener>;
  /** Everything needed to serve is known (first start may proceed). */
  complete: boolean;
}

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
  private readonly external = new ExternalUpstream();
  /** Routes, clusters (load balancers, outlier detection, circuit breakers) across versions. */
  private readonly traffic = new TrafficState(undefined, { now: Date.now, random: Math.random });
  private readonly rateLimiter = new LocalRateLimiter(undefined, { now: Date.now });
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

  /**
   * Applies one pushed resource, all or nothing: the new state and any listeners it needs are
   * prepared first; only when everything is ready does it replace the old one (ACK). Anything
   * that fails leaves the previous version live (NACK).
   */
  async apply(type: ResourceType, resource: unknown, version: string): Promise<ApplyResult> {
    let next: State;
    let trustChange: (() => void) | undefined;
    let trafficChange: (() => void) | undefined;
    try {
      switch (type) {
        case 'workload':
          next = { ...this.state, workload: this.checkWorkload(resource as WorkloadSnapshot) };
          break;
        case 'inbound':
          next = { ...this.state, ...this.prepareInbound(resource as InboundSnapshot) };
          break;
        case 'outbound': {
          const outbound = resource as OutboundSnapshot;
          const resolver = new ServiceResolver(outbound);
          // Compiles the whole version first: a bad one throws here and the old one stays.
          trafficChange = this.traffic.prepare(outbound.traffic ?? defaultTraffic(outbound));
          next = { ...this.state, outbound, resolver };
          break;
        }
        case 'trust':
          trustChange = this.prepareTrust(resource as TrustSnapshot);
          next = { ...this.state, trust: resource as TrustSnapshot };
          break;
      }
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
    next = { ...next, versions: { ...this.state.versions, [type]: version } };
    let listeners: ListenerPlan;
    try {
      listeners = await this.prepareListeners(next);
    } catch (err) {
      return { ok: false, error: `cannot open listeners: ${(err as Error).message}` };
    }
    // Commit: from here on nothing fails.
    this.state = next;
    if (type === 'inbound') this.rateLimiter.update(next.inbound?.rateLimits);
    trustChange?.();
    trafficChange?.();
    for (const [name, listener] of listeners.obsolete) {
      this.inbound.delete(name);
      delete this.ports.inbound[name];
      // Connections on the old port finish in the background.
      void listener.close();
    }
    for (const [name, listener] of listeners.opened) {
      this.inbound.set(name, listener.listener);
      this.ports.inbound[name] = listener.port;
    }
    for (const port of next.inbound?.ports ?? []) this.inbound.get(port.name)?.update(port);
    if (!this.started && listeners.complete) {
      try {
        await this.start(next);
      } catch (err) {
        this.options.log.error({ event: 'sidecar.start_failed', err: (err as Error).message }, 'cannot open the outbound listeners');
        return { ok: false, error: `cannot open the outbound listeners: ${(err as Error).message}` };
      }
    }
    return { ok: true };
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...[...this.inbound.values()].map((listener) => listener.close()), ...this.outbound.map((listener) => listener.close())]);
    this.tracker.closeAll();
    this.upstream.close();
    this.external.close();
    // After the listeners drained: the last requests' spans are exported too.
    await this.options.tracer?.shutdown();
  }

  private checkWorkload(workload: WorkloadSnapshot): WorkloadSnapshot {
    if (workload.identity !== this.svid.id.toString()) {
      throw new Error(`workload ${workload.namespace}/${workload.name} runs as ${workload.identity}, but this proxy holds ${this.svid.id.toString()}`);
    }
    return workload;
  }

  private prepareInbound(inbound: InboundSnapshot): Pick<State, 'inbound' | 'policy'> {
    if (!this.state.workload) throw new Error('inbound config arrived before the workload config');
    for (const port of inbound.ports) {
      if (this.appTarget(port.name) === undefined) {
        throw new Error(`no application port for workload port "${port.name}" (${port.port}): start the proxy with --app-port ${port.name}=PORT`);
      }
    }
    // A policy that fails to compile throws here, and the old one stays.
    return { inbound, policy: new InboundPolicy(inbound.policy, this.jwks) };
  }

  /** Validates new trust material; the returned function puts it in force. */
  private prepareTrust(trust: TrustSnapshot): () => void {
    const bundle = TrustBundle.fromSpiffeJson(trust.trustDomain, trust.bundle);
    if (bundle.roots.length === 0) throw new Error('the trust bundle has no roots');
    const revocations = RevocationList.fromJson(trust.revocations);
    return () => {
      const previous = this.spiffe.revocations;
      this.spiffe.update({ bundle, revocations });
      if (revocations.sequence === previous.sequence) return;
      // A revocation takes effect on live connections, not only on new ones.
      const closed = this.tracker.closeWhere(
        (info) => info.peer !== undefined && (revocations.isSerialRevoked(info.peer.serial) || revocations.isIdentityRevoked(info.peer.identity.toString())),
      );
      this.upstream.reset();
      if (closed > 0) this.options.log.info({ event: 'revocation.closed_connections', closed }, `closed ${closed} connection(s) of revoked peers`);
    };
  }

  private appTarget(portName: string): AppTarget | undefined {
    const ports = this.options.app.ports;
    const port = typeof ports === 'number' ? ports : ports[portName];
    return port === undefined ? undefined : { host: this.options.app.host, port };
  }

  /**
   * Opens the inbound listeners `state` needs that are not open yet (new ports, moved ports).
   * If one cannot open, the ones opened here are closed again and the error is thrown.
   */
  private async prepareListeners(state: State): Promise<ListenerPlan> {
    const plan: ListenerPlan = { opened: new Map(), obsolete: new Map(), complete: false };
    const { workload, inbound, policy, resolver, trust } = state;
    if (this.closing || !workload || !inbound || !policy || !resolver || !trust) return plan;
    plan.complete = true;
    const wanted = new Map(inbound.ports.map((port) => [port.name, port]));
    for (const [name, listener] of this.inbound) {
      if (wanted.get(name)?.port !== this.ports.inbound[name]) plan.obsolete.set(name, listener);
    }
    try {
      for (const port of inbound.ports) {
        if (this.inbound.has(port.name) && !plan.obsolete.has(port.name)) continue;
        const listener = new InboundListener(port, this.appTarget(port.name) as AppTarget, {
          tls: () => this.spiffe,
          policy: () => this.state.policy as InboundPolicy,
          rateLimiter: this.rateLimiter,
          ownIdentity: () => this.svid.id.toString(),
          tracker: this.tracker,
          log: this.options.log,
          ...(this.options.tracer ? { tracer: this.options.tracer } : {}),
          ...(this.options.onDecision ? { onDecision: this.options.onDecision } : {}),
          ...(this.options.onConnectionDecision ? { onConnectionDecision: this.options.onConnectionDecision } : {}),
          ...(this.options.telemetry ? { telemetry: this.options.telemetry } : {}),
        });
        const bound = await listener.listen(this.options.inboundHost ?? workload.address).catch(async (err: unknown) => {
          await listener.close();
          throw err;
        });
        plan.opened.set(port.name, { listener, port: bound });
      }
    } catch (err) {
      await Promise.all([...plan.opened.values()].map((opened) => opened.listener.close()));
      throw err;
    }
    return plan;
  }

  private async start(state: State): Promise<void> {
    await this.openOutbound();
    this.started = true;
    const workload = state.workload as WorkloadSnapshot;
    this.options.log.info({ event: 'sidecar.ready', workload: `${workload.namespace}/${workload.name}`, identity: workload.identity, ports: this.ports }, 'sidecar ready');
  }

  private async openOutbound(): Promise<void> {
    const deps = {
      resolver: () => this.state.resolver as ServiceResolver,
      traffic: () => this.traffic,
      upstream: this.upstream,
      external: this.external,
      source: () => ({ namespace: this.state.workload?.namespace ?? '', labels: this.state.workload?.labels ?? {} }),
      tracker: this.tracker,
      ...(this.options.tracer ? { tracer: this.options.tracer } : {}),
      log: this.options.log,
      random: Math.random,
      now: Date.now,
      ...(this.options.telemetry ? { telemetry: this.options.telemetry } : {}),
    };
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
