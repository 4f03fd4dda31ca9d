/**
 * IP addresses and CIDR ranges, parsed strictly (dotted-decimal IPv4 without leading zeros,
 * RFC 4291 IPv6 text without zones) into 32-bit words so matching is a few integer compares.
 * Shared by validation (is this a valid ipBlock?) and the authorizer (does it match?).
 */

export interface IpAddress {
  readonly family: 4 | 6;
  /** One word for IPv4, four for IPv6, most significant first; each an unsigned 32-bit value. */
  readonly words: readonly number[];
}

export interface CidrRange extends IpAddress {
  /** Prefix length: 0–32 for IPv4, 0–128 for IPv6. `words` are already masked to it. */
  readonly bits: number;
}

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const DECIMAL = /^(0|[1-9][0-9]*)$/;

export function parseIpv4(text: string): IpAddress | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let word = 0;
  for (const part of parts) {
    if (!DECIMAL.test(part) || part.length > 3) return undefined;
    const byte = Number(part);
    if (byte > 255) return undefined;
    word = word * 256 + byte;
  }
  return { family: 4, words: [word] };
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

export function parseIpv6(text: string): IpAddress | undefined {
  if (text.includes('%')) return undefined; // zones identify an interface, not an address
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === '') return [];
    const out: number[] = [];
    const items = half.split(':');
    for (const [index, item] of items.entries()) {
      if (index === items.length - 1 && item.includes('.')) {
        const v4 = parseIpv4(item);
        if (!v4) return undefined;
        const word = v4.words[0] ?? 0;
        out.push(Math.floor(word / 65536), word % 65536);
      } else {
        if (!HEX_GROUP.test(item)) return undefined;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0] ?? '');
  const tail = halves.length === 2 ? groups(halves[1] ?? '') : [];
  if (!head || !tail) return undefined;
  // An embedded IPv4 address is only allowed at the very end.
  if (halves.length === 2 && (halves[0] ?? '').includes('.')) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    if (head.length !== 8) return undefined;
    all = head;
  }
  const words: number[] = [];
  for (let i = 0; i < 8; i += 2) words.push((all[i] ?? 0) * 65536 + (all[i + 1] ?? 0));
  return { family: 6, words };
}

export function parseIp(text: string): IpAddress | undefined {
  return text.includes(':') ? parseIpv6(text) : parseIpv4(text);
}

/**
 * The address a request came from, as the data plane reports it. Dual-stack sockets report
 * IPv4 clients as IPv4-mapped IPv6 (`::ffff:10.0.0.1`); those are unmapped so IPv4 ranges match.
 */
export function parseRequestIp(text: string): IpAddress | undefined {
  const ip = parseIp(text);
  if (ip && ip.family === 6 && ip.words[0] === 0 && ip.words[1] === 0 && ip.words[2] === 0xffff) {
    return { family: 4, words: [ip.words[3] ?? 0] };
  }
  return ip;
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a single address (a full-length range). */
export function parseIpBlock(text: string): ParseResult<CidrRange> {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const address = parseIp(addressText);
  if (!address) {
    return { ok: false, reason: `"${addressText}" is not an IPv4 or IPv6 address` };
  }
  const maxBits = address.family === 4 ? 32 : 128;
  let bits = maxBits;
  if (slash !== -1) {
    const bitsText = text.slice(slash + 1);
    if (!DECIMAL.test(bitsText) || Number(bitsText) > maxBits) {
      return { ok: false, reason: `prefix length "${bitsText}" must be a number from 0 to ${maxBits}` };
    }
    bits = Number(bitsText);
  }
  return { ok: true, value: { family: address.family, words: maskWords(address.words, bits), bits } };
}

function maskWords(words: readonly number[], bits: number): number[] {
  return words.map((word, index) => {
    const keep = Math.max(0, Math.min(32, bits - index * 32));
    if (keep === 32) return word;
    if (keep === 0) return 0;
    const mask = (0xffffffff << (32 - keep)) >>> 0;
    return (word & mask) >>> 0;
  });
}

export function cidrContains(range: CidrRange, ip: IpAddress): boolean {
  if (range.family !== ip.family) return false;
  let remaining = range.bits;
  for (let i = 0; i < range.words.length && remaining > 0; i++) {
    const keep = Math.min(32, remaining);
    const word = ip.words[i] ?? 0;
    const masked = keep === 32 ? word : (word & ((0xffffffff << (32 - keep)) >>> 0)) >>> 0;
    if (masked !== range.words[i]) return false;
    remaining -= keep;
  }
  return true;
}
