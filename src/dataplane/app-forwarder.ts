/**
 * The last inbound hop: the local application on loopback, over keep-alive HTTP/1.1 or a shared
 * HTTP/2 (h2c) session, whichever the application speaks.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { PortProtocol } from '../mesh/snapshot.js';
import { localReply } from './l7/local-reply.js';
import type { L7Handler, L7Request, L7Response } from './l7/types.js';
import { Http2SessionPool, sendHttp1, sendHttp2, UpstreamError } from './l7/upstream.js';

export interface AppTarget {
  host: string;
  port: number;
}

export class AppForwarder {
  private readonly agent = new http.Agent({ keepAlive: true, scheduling: 'lifo' });
  private readonly sessions = new Http2SessionPool();
  private readonly target: AppTarget;
  private readonly protocol: PortProtocol;

  constructor(target: AppTarget, protocol: PortProtocol) {
    this.target = target;
    this.protocol = protocol;
  }

  get targetAddress(): AppTarget {
    return this.target;
  }

  readonly handler: L7Handler = async (request) => {
    try {
      return await this.send(request);
    } catch (err) {
      const error = err instanceof UpstreamError ? err : new UpstreamError('UF', String(err));
      request.context.responseFlags.push(error.flag);
      return localReply(request, 503, `upstream connect error or disconnect/reset before headers: ${error.message}`);
    }
  };

  private send(request: L7Request): Promise<L7Response> {
    const h2 = this.protocol === 'GRPC' || this.protocol === 'HTTP2' || (this.protocol === 'UNKNOWN' && request.protocol === 'HTTP/2');
    if (!h2) return sendHttp1(request, { host: this.target.host, port: this.target.port, agent: this.agent, secure: false });
    const session = this.sessions.get('app', () => http2.connect(`http://${this.target.host}:${this.target.port}`));
    return sendHttp2(request, session, 'http');
  }

  close(): void {
    this.agent.destroy();
    this.sessions.closeAll();
  }
}
