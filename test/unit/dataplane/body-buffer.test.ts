import assert from 'node:assert/strict';
import { PassThrough, type Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { RequestBody } from '../../../src/dataplane/body-buffer.js';

function next(stream: Readable): Promise<string> {
  return new Promise((resolve) => stream.once('data', (chunk: Buffer) => resolve(chunk.toString())));
}

async function all(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += (chunk as Buffer).toString();
  return text;
}

describe('request body for attempts', () => {
  it('streams to the first attempt before the body ends (a streaming call is not held back)', async () => {
    const source = new PassThrough();
    const body = new RequestBody(source);
    const first = body.forAttempt();
    assert.ok(first);
    source.write('hello');
    assert.equal(await next(first), 'hello');
    source.end(' world');
    assert.equal(await all(first), ' world');
    assert.equal(await body.settled(), true);
  });

  it('gives a retry the recording, then what arrives later', async () => {
    const source = new PassThrough();
    const body = new RequestBody(source);
    body.forAttempt();
    source.write('a');
    await new Promise((resolve) => setImmediate(resolve));
    const retry = body.forAttempt();
    assert.ok(retry);
    source.end('b');
    assert.equal(await all(retry), 'ab');
    assert.equal(body.recording().toString(), 'ab');
  });

  it('sends a body over the limit once, and never again', async () => {
    const source = new PassThrough();
    const body = new RequestBody(source, 4);
    const first = body.forAttempt();
    assert.ok(first);
    source.end('123456');
    assert.equal(await all(first), '123456');
    assert.equal(await body.settled(), false);
    assert.equal(body.replayable, false);
    assert.equal(body.forAttempt(), undefined);
  });

  it('passes a failure of the downstream body on to the attempt', async () => {
    const source = new PassThrough();
    const body = new RequestBody(source);
    const first = body.forAttempt();
    assert.ok(first);
    const failed = new Promise<Error>((resolve) => first.once('error', resolve));
    source.destroy(new Error('client went away'));
    assert.equal((await failed).message, 'client went away');
    assert.equal(await body.settled(), false);
  });
});
