import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatTraceParent, parseSamplingPercent, parseTraceParent, parseTraceState, RandomIds, sampledByRate } from '../../../src/telemetry/trace-context.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

void describe('W3C traceparent', () => {
  void it('parses the spec example, sampled and not', () => {
    assert.deepEqual(parseTraceParent(`00-${TRACE}-${SPAN}-01`), { traceId: TRACE, parentId: SPAN, flags: 1, sampled: true });
    assert.deepEqual(parseTraceParent(`00-${TRACE}-${SPAN}-00`), { traceId: TRACE, parentId: SPAN, flags: 0, sampled: false });
    // Other flag bits are carried, only bit 0 means sampled.
    assert.equal(parseTraceParent(`00-${TRACE}-${SPAN}-02`)?.sampled, false);
    assert.equal(parseTraceParent(`00-${TRACE}-${SPAN}-03`)?.sampled, true);
    // Optional whitespace around the header value.
    assert.equal(parseTraceParent(` 00-${TRACE}-${SPAN}-01 `)?.traceId, TRACE);
  });

  void it('refuses what the spec calls invalid', () => {
    const invalid = [
      undefined,
      '',
      `00-${TRACE.toUpperCase()}-${SPAN}-01`, // uppercase hex
      `00-${TRACE}-${SPAN.toUpperCase()}-01`,
      `00-${'0'.repeat(32)}-${SPAN}-01`, // all-zero trace id
      `00-${TRACE}-${'0'.repeat(16)}-01`, // all-zero parent id
      `ff-${TRACE}-${SPAN}-01`, // version ff
      `0g-${TRACE}-${SPAN}-01`, // not hex
      `00-${TRACE}-${SPAN}-1`, // short flags
      `00-${TRACE}-${SPAN}-0x`,
      `00-${TRACE}-${SPAN}-01-extra`, // version 00 has exactly four fields
      `00-${TRACE.slice(1)}-${SPAN}-01`, // short trace id
      `00-${TRACE}0-${SPAN}-01`,
      `00_${TRACE}_${SPAN}_01`, // wrong separators
    ];
    for (const value of invalid) assert.equal(parseTraceParent(value), undefined, String(value));
  });

  void it('reads a later version by its first four fields', () => {
    assert.equal(parseTraceParent(`01-${TRACE}-${SPAN}-01-what-the-future-brings`)?.traceId, TRACE);
    assert.equal(parseTraceParent(`cc-${TRACE}-${SPAN}-01`)?.parentId, SPAN);
    // …but a later version still needs "-" after the flags when it is longer.
    assert.equal(parseTraceParent(`01-${TRACE}-${SPAN}-01x`), undefined);
  });

  void it('formats version 00 with the sampled flag only', () => {
    assert.equal(formatTraceParent(TRACE, SPAN, true), `00-${TRACE}-${SPAN}-01`);
    assert.equal(formatTraceParent(TRACE, SPAN, false), `00-${TRACE}-${SPAN}-00`);
    assert.deepEqual(parseTraceParent(formatTraceParent(TRACE, SPAN, true)), { traceId: TRACE, parentId: SPAN, flags: 1, sampled: true });
  });
});

void describe('W3C tracestate', () => {
  void it('passes a valid list on, joining repeated headers and skipping empty members', () => {
    assert.equal(parseTraceState(['congo=t61rcWkgMzE']), 'congo=t61rcWkgMzE');
    assert.equal(parseTraceState(['rojo=00f067aa0ba902b7, congo=t61rcWkgMzE', 'tenant@vendor=x']), 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant@vendor=x');
    assert.equal(parseTraceState(['a=1,,  ,b=2']), 'a=1,b=2');
  });

  void it('drops an invalid or empty list', () => {
    assert.equal(parseTraceState([]), undefined);
    assert.equal(parseTraceState(['']), undefined);
    assert.equal(parseTraceState(['Upper=1']), undefined, 'keys are lowercase');
    assert.equal(parseTraceState(['a=1,a=2']), undefined, 'duplicate keys');
    assert.equal(parseTraceState(['novalue']), undefined);
    assert.equal(parseTraceState(['a=x=y']), undefined, '= is not allowed in values');
    assert.equal(parseTraceState(['a=caf\u00e9']), undefined, 'values are printable ASCII');
    assert.equal(parseTraceState(['a=b c ,d=e']), 'a=b c,d=e', 'whitespace around members is optional whitespace');
    assert.equal(parseTraceState([Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')]), undefined, 'at most 32 members');
  });
});

void describe('ids and sampling', () => {
  void it('makes lowercase hex ids of the right size that are never all zero and do not repeat', () => {
    const ids = new RandomIds();
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const trace = ids.traceId();
      const span = ids.spanId();
      assert.match(trace, /^[0-9a-f]{32}$/);
      assert.match(span, /^[0-9a-f]{16}$/);
      assert.notEqual(trace, '0'.repeat(32));
      seen.add(trace);
    }
    assert.equal(seen.size, 2000);
  });

  void it('samples the configured share of trace ids, deterministically', () => {
    const ids = new RandomIds();
    const traces = Array.from({ length: 20_000 }, () => ids.traceId());
    assert.equal(traces.filter((id) => sampledByRate(id, 100)).length, traces.length);
    assert.equal(traces.filter((id) => sampledByRate(id, 0)).length, 0);
    const ten = traces.filter((id) => sampledByRate(id, 10)).length / traces.length;
    assert.ok(ten > 0.08 && ten < 0.12, `10 % sampled ${ten}`);
    const one = traces.filter((id) => sampledByRate(id, 1)).length / traces.length;
    assert.ok(one > 0.005 && one < 0.015, `1 % sampled ${one}`);
    // The same trace id always gets the same decision (every proxy agrees).
    for (const id of traces.slice(0, 100)) assert.equal(sampledByRate(id, 10), sampledByRate(id, 10));
    // A lower rate samples a subset of a higher one.
    for (const id of traces) if (sampledByRate(id, 1)) assert.ok(sampledByRate(id, 10));
  });

  void it('reads a sampling percentage', () => {
    assert.equal(parseSamplingPercent('1'), 1);
    assert.equal(parseSamplingPercent('0.01'), 0.01);
    assert.equal(parseSamplingPercent('100'), 100);
    assert.equal(parseSamplingPercent('0'), 0);
    for (const bad of ['', '-1', '100.5', 'abc', '1e2', '50%']) assert.equal(parseSamplingPercent(bad), undefined, bad);
  });
});
