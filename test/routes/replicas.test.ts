// Two real server processes (the tiny generated model) on different ports and one PostgreSQL
// database (a fresh schema per run): a category created through one is used by the other;
// anomalous detections spread over both reach a webhook receiver exactly once each; and with
// one replica killed (SIGKILL) mid-run every recorded event is still delivered, the killed
// replica's leased events taken over by the other once their lease expires, with duplicates
// only among the events it held at the kill. Without PostgreSQL the file skips, saying why.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel } from '../../src/dev/random-model.ts';
import { findPostgres, TestSchemas } from '../support/postgres.ts';
import { until } from '../support/until.js';

const ROOT = join(import.meta.dirname, '..', '..');
const found = await findPostgres();

/** One replica: `node --import tsx src/server.ts`, its JSON log lines collected. */
class Replica {
  readonly lines: any[] = [];
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;
  base = '';

  constructor(
    readonly name: string,
    env: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } });
    let rest = '';
    this.child.stdout.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString('utf8')).split('\n');
      rest = parts.pop()!;
      for (const line of parts) if (line.trim().startsWith('{')) this.lines.push(JSON.parse(line));
    });
    this.child.stderr.resume();
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  async ready(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited: ${JSON.stringify(this.lines.slice(-5))}`);
      if (Date.now() > deadline) throw new Error(`${this.name} not ready: ${JSON.stringify(this.lines.slice(-5))}`);
      const listening = this.lines.find((l) => /^Server listening at/.test(l.msg));
      if (listening && !this.base) this.base = /(http:\/\/127\.0\.0\.1:\d+)/.exec(listening.msg)![1]!;
      if (this.base) {
        const res = await fetch(`${this.base}/readyz`).catch(() => undefined);
        if (res?.status === 200) return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** Counts deliveries per event id; optionally slow, so deliveries are in flight when a replica dies. */
class Receiver {
  /** `by`: the replica whose WEBHOOK_URL was called (each has its own path). */
  readonly deliveries: Array<{ eventId: string; requestId: string; by: string }> = [];
  /** Requests received and not yet answered, by replica. */
  readonly open = new Map<string, number>();
  delayMs = 0;
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const event = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const by = String(req.url).split('/').pop()!;
        this.open.set(by, (this.open.get(by) ?? 0) + 1);
        const answer = () => {
          this.open.set(by, this.open.get(by)! - 1);
          this.deliveries.push({ eventId: String(req.headers['x-webhook-id']), requestId: event.requestId, by });
          res.writeHead(200).end();
        };
        if (this.delayMs) setTimeout(answer, this.delayMs);
        else answer();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/hook`;
  }

  /** Whether an event is being delivered by `by` right now (received, not yet answered). */
  busy(by: string): boolean {
    return (this.open.get(by) ?? 0) > 0;
  }

  of(prefix: string) {
    const mine = this.deliveries.filter((d) => d.requestId.startsWith(prefix));
    const perEvent = new Map<string, number>();
    for (const d of mine) perEvent.set(d.eventId, (perEvent.get(d.eventId) ?? 0) + 1);
    return { total: mine.length, distinct: perEvent.size, perEvent, requestIds: new Set(mine.map((d) => d.requestId)) };
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}


if ('reason' in found) {
  console.warn(`replica tests skipped: no PostgreSQL server answered (${found.reason})`);
  describe.skip('two replicas on one database (no PostgreSQL server reachable)', () => {
    it('needs PostgreSQL at 127.0.0.1:5432, database test', () => {});
  });
} else {
  const schemas = new TestSchemas(found.url);
  const schema = schemas.next('replicas');
  const receiver = new Receiver();
  const LEASE_MS = 3000;
  let dir: string;
  let db: pg.Pool;
  let image: Buffer;
  let replicas: Replica[] = [];

  const envFor = (name: string): Record<string, string> => ({
    HOME: dir,
    MODEL: join(dir, 'tiny'),
    MODEL_CACHE_DIR: join(dir, 'cache'),
    DATA_DIR: join(dir, `data-${name}`),
    PROMPTS_DIR: join(dir, 'prompts'),
    HF_HUB_OFFLINE: '1',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    WINCLIP: '0',
    MUSC: '0',
    WORKERS: '1',
    MAX_QUEUE: '64',
    STORE_URL: found.url,
    STORE_SCHEMA: schema,
    STORE_POOL_SIZE: '4',
    WEBHOOK_URL: `${receiver.url}/${name}`,
    WEBHOOK_SECRET: 'replica-test-secret-0123456789',
    WEBHOOK_TIMEOUT_MS: '2000',
    WEBHOOK_LEASE_MS: String(LEASE_MS),
    WEBHOOK_BACKOFF_MS: '200',
  });

  /** One detection with threshold 0 (so anomalous), tagged so the record and its event can be found. */
  const detect = (replica: Replica, category: string, tag: string) =>
    fetch(`${replica.base}/v1/detect?category=${encodeURIComponent(category)}&threshold=0&map=none&metadata=${encodeURIComponent(JSON.stringify({ tag }))}`, {
      method: 'POST',
      headers: { 'content-type': 'image/png', 'x-request-id': tag },
      body: new Uint8Array(image),
    });

  /** Sends `n` detections, `concurrency` at a time, each to the replica `pick` names; resolves the tags answered 200. */
  async function spread(n: number, prefix: string, category: string, pick: (i: number) => Replica, concurrency = 6, onAnswered?: (count: number) => void) {
    const answered: string[] = [];
    const failed: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          const i = next++;
          const tag = `${prefix}${i}`;
          try {
            const res = await detect(pick(i), category, tag);
            const body = await res.json();
            if (res.status === 200 && body.isAnomalous === true) answered.push(tag);
            else failed.push(`${tag}: ${res.status} ${JSON.stringify(body).slice(0, 120)}`);
          } catch {
            failed.push(`${tag}: connection failed`);
          }
          onAnswered?.(answered.length + failed.length);
        }
      }),
    );
    return { answered, failed };
  }

  /** Tags of the detections the database recorded for `category`. */
  async function recorded(category: string): Promise<Set<string>> {
    const rows = (await db.query(`SELECT metadata->>'tag' AS tag FROM ${schema}.detections WHERE category = $1`, [category])).rows;
    return new Set(rows.map((r) => String(r.tag)));
  }

  const pendingEvents = async () => Number((await db.query(`SELECT COUNT(*) AS n FROM ${schema}.outbox`)).rows[0].n);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'replicas-'));
    mkdirSync(join(dir, 'prompts'));
    generateModel({ arch: 'tiny', seed: 1, out: join(dir, 'tiny') });
    await receiver.start();
    db = new pg.Pool({ connectionString: found.url, max: 2 });
    db.on('error', () => {});
    image = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#7a7a7a' } }).png().toBuffer();
    // One after the other: the second finds the graphs built and the schema migrated.
    replicas = [new Replica('a', envFor('a'))];
    await replicas[0]!.ready();
    replicas.push(new Replica('b', envFor('b')));
    await replicas[1]!.ready();
  }, 240_000);

  afterAll(async () => {
    for (const r of replicas) r.kill();
    await Promise.all(replicas.map((r) => r.exited));
    await receiver.close();
    await db?.end();
    await schemas.drop().catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('two replicas, one database', () => {
    it('a category created through one replica is used by the other', async () => {
      const [a, b] = replicas as [Replica, Replica];
      expect(a.base).not.toBe(b.base);
      const put = await fetch(`${a.base}/v1/categories/plate`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'metal plate' }) });
      expect(put.status).toBe(201);
      expect((await (await fetch(`${b.base}/v1/categories/plate`)).json()).name).toBe('metal plate');
      const res = await detect(b, 'plate', 'category-0');
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body).toMatchObject({ category: 'metal plate', categoryResource: { id: 'plate' } });
      // Its record is in the shared database: the other replica shows it.
      expect((await fetch(`${a.base}/v1/detections/${body.detectionId}`)).status).toBe(200);
      await until('the category event delivered', () => receiver.of('category-').distinct === 1);
    }, 60_000);

    it('200 anomalous detections spread over both: each event delivered exactly once', async () => {
      const { answered, failed } = await spread(200, 'spread-', 'bolt', (i) => replicas[i % 2]!);
      expect(failed).toEqual([]);
      expect(answered).toHaveLength(200);
      await until('200 events delivered', () => receiver.of('spread-').distinct === 200);
      await until('the outbox empty', async () => (await pendingEvents()) === 0);
      // A late duplicate would come within a poll or two.
      await new Promise((r) => setTimeout(r, 1500));
      const got = receiver.of('spread-');
      expect(got.total).toBe(200);
      expect(got.distinct).toBe(200);
      expect([...got.requestIds].sort()).toEqual([...answered].sort());
      // Both replicas delivered some: the outbox is shared, not per replica.
      const deliveredBy = replicas.map((r) => r.lines.filter((l) => l.msg === 'webhook delivered' && String(l.requestId).startsWith('spread-')).length);
      expect(deliveredBy.every((n) => n > 0)).toBe(true);
      expect(deliveredBy[0]! + deliveredBy[1]!).toBe(200);
    }, 120_000);

    it('one replica killed with SIGKILL mid-run: every recorded event delivered, its leases taken over, duplicates only among the events it held', async () => {
      const [a, b] = replicas as [Replica, Replica];
      // Slow deliveries, so the replica dies with deliveries in flight.
      receiver.delayMs = 300;
      let killedAt = -1;
      let heldAtKill: string[] = [];
      let kill: Promise<void> | undefined;
      const run = spread(200, 'kill-', 'nut', (i) => (killedAt < 0 && i % 2 === 1 ? b : a), 6, (count) => {
        if (count < 80 || kill) return;
        kill = (async () => {
          // Killed while the receiver holds one of its deliveries unanswered: it cannot have recorded that one.
          await until('a delivery of b in flight', () => receiver.busy('b'), 30_000);
          b.kill();
          killedAt = count;
          await b.exited;
          // The events the dead replica holds a lease on: claimed, not recorded as delivered.
          heldAtKill = (await db.query(`SELECT id FROM ${schema}.outbox WHERE lease_owner LIKE $1 AND lease_expires_at > now()`, [`%:${b.pid}:%`])).rows.map((r) => String(r.id));
        })();
      });
      const { answered } = await run;
      await kill;
      expect(killedAt).toBeGreaterThan(0);
      const tags = await recorded('nut');
      // Every detection answered 200 was recorded (and some cut off by the kill may have been too).
      for (const t of answered) expect(tags.has(t)).toBe(true);
      expect(tags.size).toBeGreaterThanOrEqual(150);

      await until('every recorded event delivered', () => receiver.of('kill-').distinct === tags.size, 60_000);
      await until('the outbox empty', async () => (await pendingEvents()) === 0, 30_000);
      await new Promise((r) => setTimeout(r, 1500));
      const got = receiver.of('kill-');
      expect([...got.requestIds].sort()).toEqual([...tags].sort());
      // The dead replica held leases (at most its deliverer's 4), and the live one sent those events once they expired.
      expect(heldAtKill.length).toBeGreaterThan(0);
      expect(heldAtKill.length).toBeLessThanOrEqual(4);
      const byA = new Set(receiver.deliveries.filter((d) => d.by === 'a').map((d) => d.eventId));
      for (const id of heldAtKill) expect(byA.has(id)).toBe(true);
      const duplicates = got.total - got.distinct;
      expect(duplicates).toBeLessThanOrEqual(heldAtKill.length);
      // A duplicate is an event the dead replica delivered but could not record as delivered.
      for (const [id, n] of got.perEvent) if (n > 1) expect(heldAtKill).toContain(id);
      console.info(`replica kill: ${tags.size} events recorded, ${got.distinct} delivered, ${duplicates} duplicates (bound: ${heldAtKill.length} held by the killed replica)`);
    }, 120_000);
  });
}
