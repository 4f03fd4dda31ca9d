import type { FieldPath } from '../diagnostics.js';
import { parseIp, parseIpBlock } from '../ip.js';
import { isDns1123Label, isHostName, isPortNumber } from '../names.js';
import type { ServiceEntrySpec, WorkloadEntrySpec } from '../schemas/networking.js';
import type { ResourceChecker } from './checker.js';
import { checkDnsSubdomain, checkLabelMap, checkSelectorLabels } from './common.js';
import { checkList } from './values.js';

/** WorkloadEntry and ServiceEntry: the registry of workloads outside Kubernetes. */

const PORT_NAME = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'MONGO', 'REDIS', 'MYSQL', 'TCP', 'TLS', 'UDP'];

export function checkWorkloadEntry(checker: ResourceChecker, path: FieldPath, spec: WorkloadEntrySpec, options: { requireAddress: boolean }): void {
  if (spec.address === undefined || spec.address === '') {
    if (options.requireAddress && (spec.network === undefined || spec.network === '')) {
      checker.error(spec.address === undefined ? path : [...path, 'address'], 'address is required (or network, for an endpoint reached through a gateway)', 'TRELLIS_CONFIG_MISSING_FIELD');
    }
  } else {
    const problem = addressProblem(spec.address);
    if (problem) checker.error([...path, 'address'], problem);
  }
  for (const [name, port] of Object.entries(spec.ports ?? {})) {
    if (!PORT_NAME.test(name) || name.length > 62) {
      checker.error([...path, 'ports', name], `port name "${name}": letters, digits and "-", starting and ending with a letter or digit`, 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
    }
    if (!isPortNumber(port)) checker.error([...path, 'ports', name], `port ${port} must be an integer from 1 to 65535`);
  }
  checkLabelMap(checker, [...path, 'labels'], spec.labels);
  checkDnsSubdomain(checker, [...path, 'serviceAccount'], spec.serviceAccount, 'service account name');
  if (spec.weight !== undefined && (!Number.isInteger(spec.weight) || spec.weight < 0 || spec.weight > 0xffffffff)) {
    checker.error([...path, 'weight'], 'weight must be a non-negative integer');
  }
}

function addressProblem(address: string): string | undefined {
  if (address.startsWith('unix://')) {
    const socket = address.slice('unix://'.length);
    if (!(socket.startsWith('/') || socket.startsWith('@')) || socket.endsWith('/')) {
      return `"${address}": a unix socket address is unix:///absolute/path or unix://@abstract`;
    }
    return undefined;
  }
  if (address.includes('/')) return `"${address}": an address is one IP or host name, without a prefix length or path`;
  if (parseIp(address) !== undefined) return undefined;
  if (address.includes(':')) return `"${address}" is not a valid IPv6 address (and an address has no port)`;
  if (/^[0-9.]+$/.test(address)) return `"${address}" is not a valid IPv4 address`;
  return isHostName(address, { allowWildcard: false }) ? undefined : `"${address}" is neither an IP address nor a host name`;
}

export function checkServiceEntry(checker: ResourceChecker, spec: ServiceEntrySpec): void {
  if (spec.hosts.length === 0) checker.error(['spec', 'hosts'], 'a ServiceEntry needs at least one host', 'TRELLIS_CONFIG_MISSING_FIELD');
  checkList(checker, ['spec', 'hosts'], spec.hosts, (c, p, host) => {
    if (host === '*') c.error(p, 'a ServiceEntry host cannot be "*"');
    else if (!isHostName(host, { allowWildcard: true })) c.error(p, `"${host}" is not a host name (a "*." prefix is the only wildcard)`);
  });
  checkList(checker, ['spec', 'addresses'], spec.addresses, (c, p, address) => {
    const parsed = parseIpBlock(address);
    if (!parsed.ok) c.error(p, `bad address "${address}": ${parsed.reason}`);
  });

  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  spec.ports?.forEach((port, i) => {
    const portPath = ['spec', 'ports', i];
    if (!isPortNumber(port.number)) checker.error([...portPath, 'number'], `port ${port.number} must be an integer from 1 to 65535`);
    else if (portNumbers.has(port.number)) checker.error([...portPath, 'number'], `port ${port.number} is listed twice`);
    portNumbers.add(port.number);
    if (port.name === '' || !PORT_NAME.test(port.name)) checker.error([...portPath, 'name'], `port name "${port.name}": letters, digits and "-", starting and ending with a letter or digit`);
    else if (portNames.has(port.name)) checker.error([...portPath, 'name'], `port name "${port.name}" is used twice`);
    portNames.add(port.name);
    if (port.protocol !== undefined && !PROTOCOLS.includes(port.protocol.toUpperCase())) {
      checker.error([...portPath, 'protocol'], `unknown protocol "${port.protocol}": use one of ${PROTOCOLS.join(', ')}`);
    }
    if (port.targetPort !== undefined && !isPortNumber(port.targetPort)) {
      checker.error([...portPath, 'targetPort'], `targetPort ${port.targetPort} must be an integer from 1 to 65535`);
    }
  });

  if (spec.endpoints !== undefined && spec.workloadSelector !== undefined) {
    checker.error(['spec'], 'set endpoints or workloadSelector, not both');
  }
  if (spec.workloadSelector !== undefined) {
    checkSelectorLabels(checker, ['spec', 'workloadSelector'], 'labels', spec.workloadSelector.labels);
    if (spec.location !== 'MESH_INTERNAL') {
      checker.warn(['spec', 'workloadSelector'], 'workloadSelector only applies to MESH_INTERNAL services: set location: MESH_INTERNAL', 'TRELLIS_CONFIG_IGNORED');
    }
  }
  const resolution = spec.resolution ?? 'NONE';
  spec.endpoints?.forEach((endpoint, i) => {
    const endpointPath = ['spec', 'endpoints', i];
    checkWorkloadEntry(checker, endpointPath, endpoint, { requireAddress: true });
    for (const name of Object.keys(endpoint.ports ?? {})) {
      if (!portNames.has(name)) checker.error([...endpointPath, 'ports', name], `endpoint port "${name}" is not a port name of this ServiceEntry`, 'TRELLIS_CONFIG_INVALID_VALUE', { atKey: true });
    }
    if (resolution === 'STATIC' && endpoint.address !== undefined && !endpoint.address.startsWith('unix://') && parseIp(endpoint.address) === undefined) {
      checker.error([...endpointPath, 'address'], `resolution STATIC needs IP addresses, found "${endpoint.address}" (use resolution DNS for host names)`);
    }
  });
  if (resolution === 'NONE' && spec.endpoints !== undefined && spec.endpoints.length > 0) {
    checker.error(['spec', 'endpoints'], 'resolution NONE takes no endpoints: use STATIC or DNS');
  }
  checkList(checker, ['spec', 'exportTo'], spec.exportTo, (c, p, value) => {
    if (value !== '.' && value !== '*' && !isDns1123Label(value)) c.error(p, `exportTo "${value}": use ".", "*" or a namespace name`);
  });
  checkList(checker, ['spec', 'subjectAltNames'], spec.subjectAltNames);
}
