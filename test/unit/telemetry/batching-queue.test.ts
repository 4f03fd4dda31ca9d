import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchingQueue } from '../../../src/telemetry/batching-queue.js';

void describe('batching queue', () => {
  void it('push never delivers on the caller’s tick; batches go out later, in order', async () => {
    const batches: number[][] = [];
    const queue = new BatchingQueue<number>({ capacity: 10, maxBatch: 3, deliver: async (b) => void batches.push(b) });
    for (let i = 0; i < 7; i++) assert.equal(queue.push(i), true);
    assert.equal(batches.length, 0, 'nothing delivered synchronously');
    await queue.flush();
    assert.deepEqual(batches, [[0, 1, 2], [3, 4, 5], [6]]);
    assert.deepEqual(queue.stats(), { buffered: 0, delivered: 7, dropped: 0, failed: 0 });
  });

  void it('a full queue drops and counts new items instead of waiting', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const queue = new BatchingQueue<number>({ capacity: 4, maxBatch: 2, deliver: () => gate });
    const accepted = [1, 2, 3, 4, 5, 6].map((n) => queue.push(n));
    assert.deepEqual(accepted, [true, true, true, true, false, false]);
    assert.deepEqual(queue.stats(), { buffered: 4, delivered: 0, dropped: 2, failed: 0 });
    release();
    await queue.flush();
    assert.deepEqual(queue.stats(), { buffered: 0, delivered: 4, dropped: 2, failed: 0 });
  });

  void it('a failing delivery counts its batch as failed and the queue keeps going', async () => {
    const errors: number[] = [];
    let calls = 0;
    const queue = new BatchingQueue<number>({
      capacity: 10,
      maxBatch: 2,
      deliver: async () => {
        if (calls++ === 0) throw new Error('receiver down');
      },
      onError: (_err, lost) => errors.push(lost),
    });
    [1, 2, 3].forEach((n) => queue.push(n));
    await queue.flush();
    assert.deepEqual(queue.stats(), { buffered: 0, delivered: 1, dropped: 0, failed: 2 });
    assert.deepEqual(errors, [2]);
  });

  void it('after close, pushes are dropped and counted', async () => {
    const queue = new BatchingQueue<number>({ capacity: 10, maxBatch: 10, deliver: async () => {} });
    queue.push(1);
    await queue.close();
    assert.equal(queue.push(2), false);
    assert.deepEqual(queue.stats(), { buffered: 0, delivered: 1, dropped: 1, failed: 0 });
  });
});
