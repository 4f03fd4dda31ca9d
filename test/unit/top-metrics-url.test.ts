import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metricsUrl } from '../../src/cli/commands/top.js';

describe('trellis top: where a proxy is scraped', () => {
  it('uses the reported port on the address the proxy connected from', () => {
    assert.equal(metricsUrl('0.0.0.0:15020', 'ipv4:10.0.0.7:51234'), 'http://10.0.0.7:15020/stats/prometheus');
    assert.equal(metricsUrl('[::]:15020', 'ipv6:[fd00::7]:51234'), 'http://[fd00::7]:15020/stats/prometheus');
    assert.equal(metricsUrl('10.0.0.7:15020', 'ipv4:10.0.0.7:51234'), 'http://10.0.0.7:15020/stats/prometheus');
    assert.equal(metricsUrl('127.0.0.1:40000', 'ipv4:127.0.0.1:51234'), 'http://127.0.0.1:40000/stats/prometheus');
  });

  it('refuses an address that is not the proxy’s own (a proxy cannot aim top at another host)', () => {
    assert.equal(metricsUrl('10.0.0.99:80', 'ipv4:10.0.0.7:51234'), undefined);
    assert.equal(metricsUrl('127.0.0.1:15020', 'ipv4:10.0.0.7:51234'), undefined);
  });
});
