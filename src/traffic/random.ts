/**
 * Time and chance, injected. Every decision in src/traffic that depends on the clock or on a
 * random draw takes one of these functions, so the data plane passes `Date.now`/`Math.random`
 * and tests pass a fake clock and a seeded generator and assert exact outcomes.
 */

/** Milliseconds on any monotonic-enough clock (only differences matter). */
export type Clock = () => number;

/** A uniform draw in [0, 1), like `Math.random`. */
export type Random = () => number;

/**
 * A small seeded generator (SFC32, its four words of state filled from the seed with a
 * SplitMix-style mixer): uniform enough for load-balancing statistics, fast, and reproducible
 * across runs and platforms. Not for secrets.
 */
export function seededRandom(seed: number): Random {
  let x = seed >>> 0;
  const mix = (): number => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = mix();
  let b = mix();
  let c = mix();
  let d = mix();
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 0x1_0000_0000;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** An integer in [0, n) from one draw; n ≥ 1. Clamps a misbehaving `random` that returns 1. */
export function randomInt(random: Random, n: number): number {
  const value = Math.floor(random() * n);
  return value >= n ? n - 1 : value < 0 ? 0 : value;
}

/**
 * True with the given probability in percent (0-100). Always exactly one draw, whatever the
 * percentage, so a sequence of decisions stays aligned with a seeded generator. 0 never,
 * 100 always, fractions as Istio's `Percent` allows (0.1 = one request in a thousand).
 */
export function chance(random: Random, percentage: number): boolean {
  const draw = random();
  if (percentage <= 0) return false;
  if (percentage >= 100) return true;
  return draw * 100 < percentage;
}
