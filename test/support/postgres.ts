// PostgreSQL for tests: the server at 127.0.0.1:5432 (database test, trust auth) or
// TEST_POSTGRES_URL, fresh schemas dropped afterwards, and a TCP proxy in front of it that a
// test closes and reopens: a database that goes away and comes back, without stopping the
// machine's server.
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import pg from 'pg';

const CANDIDATES = process.env.TEST_POSTGRES_URL
  ? [process.env.TEST_POSTGRES_URL]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];

/** The first URL that answers, or why none did (the test then skips, printing it). */
export async function findPostgres(): Promise<{ url: string } | { reason: string }> {
  const reasons: string[] = [];
  for (const url of CANDIDATES) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return { url };
    } catch (err) {
      reasons.push(`${url.replace(/\/\/[^@]*@/, '//…@')}: ${(err as Error).message || (err as { code?: string }).code}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return { reason: reasons.join('; ') };
}

/** A schema name no other run uses; `dropSchemas` removes every one made. */
export class TestSchemas {
  private readonly made: string[] = [];
  private readonly prefix = `t${process.pid}_${randomBytes(3).toString('hex')}`;

  constructor(readonly url: string) {}

  next(label: string): string {
    const name = `${label}_${this.prefix}_${this.made.length + 1}`;
    this.made.push(name);
    return name;
  }

  async drop(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on('error', () => {});
    await client.connect();
    try {
      for (const s of this.made) await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    } finally {
      await client.end();
    }
  }
}

/** The URL with its host and port replaced (to go through a proxy). */
export function viaPort(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

/**
 * Forwards 127.0.0.1:<port> to the database. stop() closes the listener and cuts every open
 * connection (the database "goes away": new connections are refused); start() listens again on
 * the same port.
 */
export class TcpProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly target: { host: string; port: number },
  ) {}

  static to(url: string): TcpProxy {
    const u = new URL(url);
    return new TcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Reserves a port without listening on it yet (the database is down from the start). */
  async reservePort(): Promise<number> {
    await this.start();
    await this.stop();
    return this.port;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
