/**
 * Route selection with Istio's semantics: a route table (one VirtualService's routes for one
 * host and port) is compiled once per snapshot version into small checks; each request then
 * takes the first HTTP route with a matching `match` entry (several entries are ORed, an empty
 * list matches everything), or gets "no route" with, for every route, the first condition of
 * every entry that failed — the same kind of explanation as authorization denials.
 *
 * Field semantics (Istio → Envoy, as Istio translates them):
 * - `uri` matches the path without query; exact and prefix honour `ignoreUriCase`, regex
 *   never does; regexes match the whole value.
 * - `method`, `authority`, `scheme` match the raw `:method`, `:authority`, `:scheme` values.
 * - `headers`: an empty StringMatch (or `regex: "*"`) means "present"; otherwise the header
 *   must be present and match.
 * - `withoutHeaders`: the inverse; a presence entry requires the header to be absent, a value
 *   entry treats a missing header as '' (Istio sets `treat_missing_header_as_empty`), so
 *   `withoutHeaders: {x: {exact: "a"}}` matches a request without `x`.
 * - `queryParams`: presence for an empty StringMatch (or `regex: "*"`), else the first value
 *   of the parameter must match.
 * - `port`, `sourceLabels` (a subset of the caller's labels), `sourceNamespace`: Istio applies
 *   these when it generates the proxy's routes; checking them per request is equivalent.
 * - Header names of the form `@request.auth.claims…` are JWT claim matches, which Istio only
 *   honours where a JWT was verified (gateways); on the outbound path there are no claims, so
 *   such a `headers` entry never matches and such a `withoutHeaders` entry always does.
 */
import { TrellisError } from '../api/errors.js';
import { cidrContains, parseIpBlock, parseRequestIp, type CidrRange } from '../api/ip.js';
import type { HttpMatchSnapshot, HttpRouteSnapshot, L4MatchSnapshot, RouteTableSnapshot, TcpRouteSnapshot } from '../mesh/snapshot.js';
import { compileStringMatch, isEmptyStringMatch } from './matchers.js';
import { isSensitiveName, parseQuery, pathOnly, queryOf, type RequestView, type SourceView } from './request.js';

/** Per-request values computed at most once, whatever the number of routes. */
class RequestFacts {
  readonly request: RequestView;
  private pathValue: string | undefined;
  private queryValue: Map<string, string> | undefined;

  constructor(request: RequestView) {
    this.request = request;
  }

  get path(): string {
    return (this.pathValue ??= pathOnly(this.request.path));
  }

  get query(): Map<string, string> {
    return (this.queryValue ??= parseQuery(queryOf(this.request.path)));
  }

  /** A header by lower-case name; the HTTP/2 pseudo-headers read the request line, as Envoy's header matchers do. */
  header(name: string): string | undefined {
    switch (name) {
      case ':authority':
        return this.request.authority;
      case ':path':
        return this.request.path;
      case ':method':
        return this.request.method;
      case ':scheme':
        return this.request.scheme;
      default:
        return this.request.headers.get(name);
    }
  }
}

interface Check {
  /** The condition as the VirtualService names it: `uri`, `headers[end-user]`, `port`. */
  readonly field: string;
  test(facts: RequestFacts): boolean;
  /** Why `test` failed, e.g. `headers[end-user]: "alice" ≠ exact "jason"`. */
  explain(facts: RequestFacts): string;
  /** Why `test` passed, e.g. `headers[end-user]: "jason" = exact "jason"`. */
  describe(facts: RequestFacts): string;
}

interface CompiledMatch {
  readonly match: HttpMatchSnapshot;
  readonly index: number;
  readonly checks: readonly Check[];
}

export interface CompiledHttpRoute {
  readonly route: HttpRouteSnapshot;
  /** Position in the table's `http` list (first match wins in this order). */
  readonly position: number;
  /** `name`, else `http[<index>]`. */
  readonly label: string;
  /** Empty: the route matches every request. */
  readonly matches: readonly CompiledMatch[];
}

export interface CompiledL4Route {
  readonly route: TcpRouteSnapshot;
  readonly position: number;
  readonly label: string;
  readonly matches: ReadonlyArray<{ readonly index: number; readonly checks: readonly L4Check[] }>;
}

export interface CompiledRouteTable {
  readonly table: RouteTableSnapshot;
  /** `VirtualService ns/name`, or `default route` when no VirtualService applies. */
  readonly source: string;
  readonly http: readonly CompiledHttpRoute[];
  readonly tcp: readonly CompiledL4Route[];
  readonly tls: readonly CompiledL4Route[];
}

export type HttpRouteSelection =
  | {
      readonly matched: true;
      readonly route: HttpRouteSnapshot;
      /** Position in the table's `http` list. */
      readonly position: number;
      /** Index of the `match` entry that matched; undefined when the route has no match list. */
      readonly matchIndex: number | undefined;
      /** The `match` entry that matched (rewrite needs it: a prefix rewrite replaces its prefix). */
      readonly match: HttpMatchSnapshot | undefined;
      /** The conditions that held, e.g. `headers[end-user]: "jason" = exact "jason"`. */
      readonly conditions: readonly string[];
      readonly explanation: string;
    }
  | {
      readonly matched: false;
      /** For each route in order, the first failing condition of each of its match entries. */
      readonly routes: ReadonlyArray<{ readonly route: string; readonly position: number; readonly failures: readonly string[] }>;
      readonly explanation: string;
    };

/** Compiles every regex and matcher of a route table once. Throws TRELLIS_TRAFFIC_BAD_REGEX. */
export function compileRouteTable(table: RouteTableSnapshot): CompiledRouteTable {
  return {
    table,
    source: table.virtualService === undefined ? 'default route' : `VirtualService ${table.virtualService}`,
    http: table.http.map((route, position) => ({
      route,
      position,
      label: routeLabel(route.name, 'http', route.index),
      matches: route.match.map((match, index) => ({ match, index, checks: compileHttpMatch(match) })),
    })),
    tcp: table.tcp.map((route, position) => compileL4Route(route, position, 'tcp')),
    tls: table.tls.map((route, position) => compileL4Route(route, position, 'tls')),
  };
}

function routeLabel(name: string | undefined, kind: string, index: number): string {
  return name === undefined || name === '' ? `${kind}[${index}]` : JSON.stringify(name);
}

/** The first HTTP route whose match list matches the request (Istio: first match wins). */
export function selectHttpRoute(table: CompiledRouteTable, request: RequestView): HttpRouteSelection {
  const facts = new RequestFacts(request);
  for (const compiled of table.http) {
    if (compiled.matches.length === 0) return hit(table, compiled, undefined, facts);
    for (const match of compiled.matches) {
      if (passes(match.checks, facts)) return hit(table, compiled, match, facts);
    }
  }
  return miss(table, facts);
}

function passes(checks: readonly Check[], facts: RequestFacts): boolean {
  for (let i = 0; i < checks.length; i++) if (!(checks[i] as Check).test(facts)) return false;
  return true;
}

/** A hit; the descriptions are built only if someone reads them (not on the data plane's hot path). */
function hit(table: CompiledRouteTable, compiled: CompiledHttpRoute, match: CompiledMatch | undefined, facts: RequestFacts): HttpRouteSelection {
  let conditions: string[] | undefined;
  const describe = (): string[] => (conditions ??= match === undefined ? [] : match.checks.map((check) => check.describe(facts)));
  return {
    matched: true,
    route: compiled.route,
    position: compiled.position,
    matchIndex: match?.index,
    match: match?.match,
    get conditions(): readonly string[] {
      return describe();
    },
    get explanation(): string {
      const held = describe();
      const which = match === undefined ? 'no match conditions' : compiled.matches.length > 1 ? `match[${match.index}]` : 'match';
      const because = held.length === 0 ? (match === undefined ? '' : ' (empty match: every request)') : `: ${held.join(', ')}`;
      return `${table.source}, route ${compiled.label} (${which})${because}`;
    },
  };
}

function miss(table: CompiledRouteTable, facts: RequestFacts): HttpRouteSelection {
  const routes = table.http.map((compiled) => ({
    route: compiled.label,
    position: compiled.position,
    failures: compiled.matches.map((match) => {
      const failing = match.checks.find((check) => !check.test(facts));
      const reason = failing === undefined ? 'matched' : failing.explain(facts);
      return compiled.matches.length > 1 ? `match[${match.index}] ${reason}` : reason;
    }),
  }));
  const detail = routes.map((r) => `route ${r.route}: ${r.failures.join('; ')}`).join('; ');
  const explanation = routes.length === 0 ? `${table.source} has no HTTP routes` : `no route of ${table.source} matched: ${detail}`;
  return { matched: false, routes, explanation };
}

// ---- HTTP match compilation ----------------------------------------------------------------

const CLAIM_PREFIX = '@request.auth.claims';

function compileHttpMatch(match: HttpMatchSnapshot): Check[] {
  const checks: Check[] = [];
  if (match.port !== undefined && match.port !== 0) checks.push(portCheck(match.port));
  if (match.sourceNamespace !== undefined && match.sourceNamespace !== '') checks.push(sourceNamespaceCheck(match.sourceNamespace));
  if (match.sourceLabels !== undefined) checks.push(...sourceLabelChecks(match.sourceLabels));
  if (match.uri !== undefined && !isEmptyStringMatch(match.uri)) {
    const ignoreCase = match.ignoreUriCase === true;
    const matcher = compileStringMatch(match.uri, { ignoreCase });
    const suffix = ignoreCase && match.uri.regex === undefined ? ' (ignoring case)' : '';
    checks.push(valueCheck('uri', (f) => f.path, matcher, suffix));
  }
  if (match.scheme !== undefined) checks.push(valueCheck('scheme', (f) => f.request.scheme, compileStringMatch(match.scheme, { starIsPresence: true })));
  if (match.method !== undefined) checks.push(valueCheck('method', (f) => f.request.method, compileStringMatch(match.method, { starIsPresence: true })));
  if (match.authority !== undefined) checks.push(valueCheck('authority', (f) => f.request.authority, compileStringMatch(match.authority, { starIsPresence: true })));
  for (const name of Object.keys(match.headers ?? {}).sort()) {
    const sm = (match.headers ?? {})[name];
    const key = name.toLowerCase();
    const field = `headers[${name}]`;
    if (key.startsWith(CLAIM_PREFIX)) checks.push(claimCheck(field, false));
    else checks.push(valueCheck(field, (f) => f.header(key), compileStringMatch(sm, { starIsPresence: true }), '', isSensitiveName(key)));
  }
  for (const name of Object.keys(match.withoutHeaders ?? {}).sort()) {
    const sm = (match.withoutHeaders ?? {})[name];
    const key = name.toLowerCase();
    const field = `withoutHeaders[${name}]`;
    if (key.startsWith(CLAIM_PREFIX)) checks.push(claimCheck(field, true));
    else checks.push(withoutCheck(field, key, compileStringMatch(sm, { starIsPresence: true }), isSensitiveName(key)));
  }
  for (const name of Object.keys(match.queryParams ?? {}).sort()) {
    const sm = (match.queryParams ?? {})[name];
    checks.push(valueCheck(`queryParams[${name}]`, (f) => f.query.get(name), compileStringMatch(sm, { starIsPresence: true }), '', isSensitiveName(name)));
  }
  return checks;
}

function show(value: string, redact: boolean): string {
  return redact ? '<redacted>' : JSON.stringify(value);
}

/** A value that must be present and satisfy the matcher. */
function valueCheck(
  field: string,
  read: (facts: RequestFacts) => string | undefined,
  matcher: ReturnType<typeof compileStringMatch>,
  suffix = '',
  redact = false,
): Check {
  const test = matcher.test;
  if (matcher.presence) {
    return {
      field,
      test: (f) => read(f) !== undefined,
      explain: () => `${field}: absent, must be present`,
      describe: () => `${field}: present`,
    };
  }
  return {
    field,
    test: (f) => {
      const value = read(f);
      return value !== undefined && test(value);
    },
    explain: (f) => {
      const value = read(f);
      return `${field}: ${value === undefined ? 'absent' : show(value, redact)} ≠ ${matcher.description}${suffix}`;
    },
    describe: (f) => `${field}: ${show(read(f) ?? '', redact)} = ${matcher.description}${suffix}`,
  };
}

/** `withoutHeaders`: presence entries require absence; value entries read a missing header as ''. */
function withoutCheck(field: string, key: string, matcher: ReturnType<typeof compileStringMatch>, redact: boolean): Check {
  if (matcher.presence) {
    return {
      field,
      test: (f) => f.header(key) === undefined,
      explain: () => `${field}: present, must be absent`,
      describe: () => `${field}: absent`,
    };
  }
  const test = matcher.test;
  return {
    field,
    test: (f) => !test(f.header(key) ?? ''),
    explain: (f) => {
      const value = f.header(key);
      return `${field}: ${value === undefined ? 'absent (read as "")' : show(value, redact)} = ${matcher.description}, which is excluded`;
    },
    describe: (f) => {
      const value = f.header(key);
      return `${field}: ${value === undefined ? 'absent' : show(value, redact)} ≠ ${matcher.description}`;
    },
  };
}

function claimCheck(field: string, negated: boolean): Check {
  const why = 'JWT claims are not available on the outbound path';
  return {
    field,
    test: () => negated,
    explain: () => `${field}: ${why}`,
    describe: () => `${field}: ${why}`,
  };
}

function portCheck(port: number): Check {
  return {
    field: 'port',
    test: (f) => f.request.port === port,
    explain: (f) => `port: ${f.request.port} ≠ ${port}`,
    describe: () => `port: ${port}`,
  };
}

function sourceNamespaceCheck(namespace: string): Check {
  return {
    field: 'sourceNamespace',
    test: (f) => f.request.source.namespace === namespace,
    explain: (f) => `sourceNamespace: ${JSON.stringify(f.request.source.namespace)} ≠ ${JSON.stringify(namespace)}`,
    describe: () => `sourceNamespace: ${JSON.stringify(namespace)}`,
  };
}

function sourceLabelChecks(labels: Readonly<Record<string, string>>): Check[] {
  return Object.keys(labels)
    .sort()
    .map((name) => {
      const expected = labels[name] as string;
      const field = `sourceLabels[${name}]`;
      const read = (source: SourceView): string | undefined => (Object.hasOwn(source.labels, name) ? source.labels[name] : undefined);
      return {
        field,
        test: (f: RequestFacts) => read(f.request.source) === expected,
        explain: (f: RequestFacts) => {
          const actual = read(f.request.source);
          return `${field}: ${actual === undefined ? 'absent' : JSON.stringify(actual)} ≠ ${JSON.stringify(expected)}`;
        },
        describe: () => `${field}: ${JSON.stringify(expected)}`,
      };
    });
}

// ---- L4 (tcp and tls routes) ---------------------------------------------------------------

export interface ConnectionView {
  /** The destination (service) port. */
  port: number;
  /** The original destination IP of the connection, for `destinationSubnets`. */
  destinationIp?: string;
  /** TLS SNI from the ClientHello (tls routes). */
  sni?: string;
  source: SourceView;
}

interface L4Check {
  readonly field: string;
  test(connection: ConnectionView): boolean;
  explain(connection: ConnectionView): string;
}

export type L4RouteSelection =
  | { readonly matched: true; readonly route: TcpRouteSnapshot; readonly position: number; readonly matchIndex: number | undefined; readonly explanation: string }
  | {
      readonly matched: false;
      readonly routes: ReadonlyArray<{ readonly route: string; readonly position: number; readonly failures: readonly string[] }>;
      readonly explanation: string;
    };

function compileL4Route(route: TcpRouteSnapshot, position: number, kind: 'tcp' | 'tls'): CompiledL4Route {
  return {
    route,
    position,
    label: routeLabel(undefined, kind, route.index),
    matches: route.match.map((match, index) => ({ index, checks: compileL4Match(match) })),
  };
}

function compileL4Match(match: L4MatchSnapshot): L4Check[] {
  const checks: L4Check[] = [];
  if (match.port !== undefined && match.port !== 0) {
    const port = match.port;
    checks.push({ field: 'port', test: (c) => c.port === port, explain: (c) => `port: ${c.port} ≠ ${port}` });
  }
  if (match.sourceNamespace !== undefined && match.sourceNamespace !== '') {
    const namespace = match.sourceNamespace;
    checks.push({
      field: 'sourceNamespace',
      test: (c) => c.source.namespace === namespace,
      explain: (c) => `sourceNamespace: ${JSON.stringify(c.source.namespace)} ≠ ${JSON.stringify(namespace)}`,
    });
  }
  for (const name of Object.keys(match.sourceLabels ?? {}).sort()) {
    const expected = (match.sourceLabels ?? {})[name] as string;
    const read = (c: ConnectionView): string | undefined => (Object.hasOwn(c.source.labels, name) ? c.source.labels[name] : undefined);
    checks.push({
      field: `sourceLabels[${name}]`,
      test: (c) => read(c) === expected,
      explain: (c) => `sourceLabels[${name}]: ${read(c) === undefined ? 'absent' : JSON.stringify(read(c))} ≠ ${JSON.stringify(expected)}`,
    });
  }
  if (match.destinationSubnets !== undefined && match.destinationSubnets.length > 0) {
    const subnets = match.destinationSubnets;
    const ranges: CidrRange[] = subnets.map((text) => {
      const parsed = parseIpBlock(text);
      if (!parsed.ok) {
        throw new TrellisError('TRELLIS_TRAFFIC_BAD_SNAPSHOT', `destinationSubnets: ${JSON.stringify(text)} is not an IP address or CIDR range: ${parsed.reason}`, { field: 'destinationSubnets', value: text });
      }
      return parsed.value;
    });
    checks.push({
      field: 'destinationSubnets',
      test: (c) => {
        const ip = c.destinationIp === undefined ? undefined : parseRequestIp(c.destinationIp);
        return ip !== undefined && ranges.some((range) => cidrContains(range, ip));
      },
      explain: (c) => `destinationSubnets: ${c.destinationIp === undefined ? 'no destination address' : JSON.stringify(c.destinationIp)} ∉ ${subnets.map((s) => JSON.stringify(s)).join(', ')}`,
    });
  }
  if (match.sniHosts !== undefined && match.sniHosts.length > 0) {
    const hosts = match.sniHosts;
    const matchers = hosts.map(compileSniHost);
    checks.push({
      field: 'sniHosts',
      test: (c) => c.sni !== undefined && matchers.some((m) => m(c.sni as string)),
      explain: (c) => `sniHosts: ${c.sni === undefined ? 'no SNI' : JSON.stringify(c.sni)} ∉ ${hosts.map((h) => JSON.stringify(h)).join(', ')}`,
    });
  }
  return checks;
}

/**
 * SNI host patterns: `*` matches any name, `*.example.com` any name ending in `.example.com`
 * with at least one label before it (not `example.com` itself), others exactly. DNS names
 * compare without case.
 */
export function compileSniHost(pattern: string): (sni: string) => boolean {
  const lower = pattern.toLowerCase();
  if (lower === '*') return (sni) => sni !== '';
  if (lower.startsWith('*.')) {
    const suffix = lower.slice(1);
    return (sni) => sni.length > suffix.length && sni.toLowerCase().endsWith(suffix);
  }
  return (sni) => sni.toLowerCase() === lower;
}

/** The first tcp (or, with `kind: 'tls'`, tls) route whose match list matches the connection. */
export function selectL4Route(table: CompiledRouteTable, connection: ConnectionView, kind: 'tcp' | 'tls' = 'tcp'): L4RouteSelection {
  const routes = kind === 'tcp' ? table.tcp : table.tls;
  for (const compiled of routes) {
    if (compiled.matches.length === 0) {
      return { matched: true, route: compiled.route, position: compiled.position, matchIndex: undefined, explanation: `${table.source}, ${kind} route ${compiled.label} (no match conditions)` };
    }
    for (const match of compiled.matches) {
      if (match.checks.every((check) => check.test(connection))) {
        const which = compiled.matches.length > 1 ? `match[${match.index}]` : 'match';
        return { matched: true, route: compiled.route, position: compiled.position, matchIndex: match.index, explanation: `${table.source}, ${kind} route ${compiled.label} (${which})` };
      }
    }
  }
  const failures = routes.map((compiled) => ({
    route: compiled.label,
    position: compiled.position,
    failures: compiled.matches.map((match) => {
      const failing = match.checks.find((check) => !check.test(connection));
      const reason = failing === undefined ? 'matched' : failing.explain(connection);
      return compiled.matches.length > 1 ? `match[${match.index}] ${reason}` : reason;
    }),
  }));
  const explanation =
    failures.length === 0
      ? `${table.source} has no ${kind} routes`
      : `no ${kind} route of ${table.source} matched: ${failures.map((r) => `route ${r.route}: ${r.failures.join('; ')}`).join('; ')}`;
  return { matched: false, routes: failures, explanation };
}

/**
 * All route tables of a traffic snapshot, compiled and indexed by (host, port) — what the
 * outbound path looks up once it has resolved the service and port a request is for.
 */
export class RouteTables {
  private readonly byKey = new Map<string, CompiledRouteTable>();

  constructor(tables: readonly RouteTableSnapshot[]) {
    for (const table of tables) this.byKey.set(key(table.host, table.port), compileRouteTable(table));
  }

  get(host: string, port: number): CompiledRouteTable | undefined {
    return this.byKey.get(key(host.toLowerCase(), port));
  }

  get size(): number {
    return this.byKey.size;
  }
}

function key(host: string, port: number): string {
  return `${host.toLowerCase()}:${port}`;
}
