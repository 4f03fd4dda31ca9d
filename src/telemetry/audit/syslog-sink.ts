/**
 * Audit records to a syslog receiver: RFC 5424 messages over UDP (RFC 5426, one message per
 * datagram) or over TCP / TLS with RFC 6587 octet-counting framing (as RFC 5425 requires for TLS).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import type { AuditRecord } from './record.js';
import { QueuedSink, type QueuedSinkOptions } from './sink.js';
import { formatSyslog, octetCountingFrame, type SyslogFormatOptions } from './syslog-format.js';

export interface SyslogSinkOptions extends QueuedSinkOptions, SyslogFormatOptions {
  readonly transport: 'udp' | 'tcp' | 'tls';
  readonly host: string;
  readonly port: number;
  /** For `tls`: CA, client certificate, servername… */
  readonly tls?: tls.ConnectionOptions;
  /** UDP only: longer messages are cut to this many bytes (default 8192; RFC 5426 asks receivers for ≥ 2048). */
  readonly maxDatagramBytes?: number;
}

export class SyslogSink extends QueuedSink {
  private udp: dgram.Socket | undefined;
  private stream: net.Socket | undefined;
  private readonly options: SyslogSinkOptions;

  constructor(options: SyslogSinkOptions) {
    super(options);
    this.options = options;
  }

  /** Whether a TCP/TLS connection to the receiver is open (always false for UDP). */
  get connected(): boolean {
    return this.stream !== undefined && !this.stream.destroyed;
  }

  protected async deliver(batch: readonly AuditRecord[]): Promise<void> {
    const messages = batch.map((r) => formatSyslog(r, this.options));
    if (this.options.transport === 'udp') {
      for (const message of messages) await this.sendDatagram(message);
      return;
    }
    const payload = messages.map(octetCountingFrame).join('');
    try {
      await this.writeStream(payload);
    } catch {
      // The receiver may have dropped an idle connection: reconnect once. Records can then
      // arrive twice, never zero times, unless the second attempt fails as well.
      this.dropStream();
      await this.writeStream(payload);
    }
  }

  protected async release(): Promise<void> {
    const udp = this.udp;
    this.udp = undefined;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    const stream = this.stream;
    this.stream = undefined;
    if (stream && !stream.destroyed) {
      await new Promise<void>((resolve) => {
        stream.once('close', () => resolve());
        stream.end();
      });
    }
  }

  private sendDatagram(message: string): Promise<void> {
    const max = this.options.maxDatagramBytes ?? 8192;
    let bytes = Buffer.from(message);
    if (bytes.length > max) bytes = bytes.subarray(0, max);
    if (this.udp === undefined) {
      this.udp = dgram.createSocket(net.isIPv6(this.options.host) ? 'udp6' : 'udp4');
      // Send errors arrive through the send callback; the socket-level event must not crash us.
      this.udp.on('error', () => {});
    }
    const socket = this.udp;
    return new Promise((resolve, reject) => socket.send(bytes, this.options.port, this.options.host, (err) => (err ? reject(err) : resolve())));
  }

  private async connect(): Promise<net.Socket> {
    if (this.stream !== undefined && !this.stream.destroyed) return this.stream;
    const { host, port } = this.options;
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s =
        this.options.transport === 'tls'
          ? tls.connect({ ...this.options.tls, host, port }, () => done())
          : net.connect({ host, port }, () => done());
      const done = (): void => {
        s.off('error', reject);
        resolve(s);
      };
      s.once('error', reject);
    });
    socket.setNoDelay(true);
    socket.on('error', () => this.dropStream());
    socket.on('close', () => {
      if (this.stream === socket) this.stream = undefined;
    });
    // A syslog receiver never talks back; reading keeps a half-closed peer detectable.
    socket.resume();
    this.stream = socket;
    return socket;
  }

  private async writeStream(payload: string): Promise<void> {
    const socket = await this.connect();
    await new Promise<void>((resolve, reject) => socket.write(payload, (err) => (err ? reject(err) : resolve())));
  }

  private dropStream(): void {
    this.stream?.destroy();
    this.stream = undefined;
  }
}
