import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pickDestination, pickMirrors } from '../../../src/traffic/destination.js';
import { chance, randomInt, seededRandom } from '../../../src/traffic/random.js';
import { draws } from './fixtures.js';

void describe('weighted destinations', () => {
  const split = [
    { name: 'v1', weight: 80 },
    { name: 'v2', weight: 20 },
    { name: 'v3', weight: 0 },
  ];

  void it('80/20 over 10,000 requests with a seeded generator: exact counts, weight 0 never', () => {
    const random = seededRandom(42);
    const counts: Record<string, number> = { v1: 0, v2: 0, v3: 0 };
    for (let i = 0; i < 10_000; i++) counts[(pickDestination(split, random) as { name: string }).name]! += 1;
    assert.deepEqual(counts, { v1: 8020, v2: 1980, v3: 0 });
  });

  void it('50/30/20 with another seed', () => {
    const random = seededRandom(7);
    const list = [
      { name: 'a', weight: 50 },
      { name: 'b', weight: 30 },
      { name: 'c', weight: 20 },
    ];
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 10_000; i++) counts[(pickDestination(list, random) as { name: string }).name]! += 1;
    assert.deepEqual(counts, { a: 4965, b: 3061, c: 1974 });
  });

  void it('boundaries of the draw: cumulative weights, weight 0 skipped', () => {
    const list = [
      { name: 'a', weight: 0 },
      { name: 'b', weight: 30 },
      { name: 'c', weight: 70 },
    ];
    const pick = (draw: number): string | undefined => pickDestination(list, draws(draw))?.name;
    assert.equal(pick(0), 'b');
    assert.equal(pick(0.2999), 'b');
    assert.equal(pick(0.3), 'c');
    assert.equal(pick(0.9999), 'c');
  });

  void it('one destination is used whatever its weight, without a draw; none, or all zero, gives undefined', () => {
    const random = (): number => assert.fail('no draw expected');
    assert.equal(pickDestination([{ weight: 0, name: 'only' }], random)?.name, 'only');
    assert.equal(pickDestination([], random), undefined);
    assert.equal(pickDestination([{ weight: 0 }, { weight: 0 }], random), undefined);
  });

  void it('mirrors: an independent draw per mirror against its percentage', () => {
    const random = seededRandom(3);
    let mirrored = 0;
    for (let i = 0; i < 10_000; i++) mirrored += pickMirrors({ mirrors: [{ cluster: 'c', host: 'h', port: 1, percentage: 25 }] }, random).length;
    assert.equal(mirrored, 2471);
    const both = pickMirrors(
      {
        mirrors: [
          { cluster: 'a', host: 'a', port: 1, percentage: 100 },
          { cluster: 'b', host: 'b', port: 1, percentage: 0 },
        ],
      },
      draws(0.5),
    );
    assert.deepEqual(
      both.map((m) => m.cluster),
      ['a'],
    );
  });
});

void describe('random helpers', () => {
  void it('seeded generators are reproducible and in [0, 1)', () => {
    const a = seededRandom(1);
    const b = seededRandom(1);
    for (let i = 0; i < 1000; i++) {
      const x = a();
      assert.equal(x, b());
      assert.ok(x >= 0 && x < 1);
    }
    assert.notEqual(seededRandom(1)(), seededRandom(2)());
  });

  void it('chance always takes exactly one draw', () => {
    let n = 0;
    const counting = (): number => {
      n++;
      return 0.5;
    };
    assert.equal(chance(counting, 0), false);
    assert.equal(chance(counting, 100), true);
    assert.equal(chance(counting, 50.1), true);
    assert.equal(chance(counting, 50), false);
    assert.equal(n, 4);
  });

  void it('randomInt clamps a generator that returns 1', () => {
    assert.equal(randomInt(() => 1, 5), 4);
    assert.equal(randomInt(() => 0, 5), 0);
  });
});
