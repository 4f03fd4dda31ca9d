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
 * A small seeded generator (SplitMix32-style mixing of a Weyl sequence): uniform enough for
 * load-balancing statistics, fast, and reproducible across runs and platforms. Not for secrets.
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    return (z >>> 0) / 0x1_0000_0000;
  };
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
