// MQTT publishing from the durable outbox, against the real Mosquitto on 127.0.0.1:1883 (the
// file skips with a printed reason when none answers): a subscriber receives each anomalous
// event with QoS 1 on the templated topic, beside the webhook; events made while the broker is
// unreachable (a TCP proxy the test controls, not yet listening) stay in the outbox and go out
// once it is back, also after a restart of the service.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as tcpConnect, createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import type { FastifyInstance } from 'fastify';
import { loadSettings } from '../../src/settings.ts';
import { escapeTopicLevel, mqttCredentials, mqttTopic, type MqttOptions } from '../../src/webhooks/mqtt.ts';
import { startTinyService, type TinyService } from '../support/tiny-service.ts';
import { detectEvent, startEventApp } from '../support/event-app.ts';
import { partPng } from '../support/test-images.ts';
import { until } from '../support/until.js';

const BROKER = { host: '127.0.0.1', port: 1883 };
const SECRET = 'whsec-test-0123456789';

describe('topics and settings', () => {
  it('fills {category} and {method} as single escaped levels', () => {
    expect(escapeTopicLevel('metal/plate #2+x%')).toBe('metal%2Fplate %232%2Bx%25');
    expect(mqttTopic('plant/anomaly/{category}', { category: 'metal plate' })).toBe('plant/anomaly/metal plate');
    expect(mqttTopic('a/{category}/{method}', { category: 'a/b', method: 'winclip' })).toBe('a/a%2Fb/winclip');
    expect(mqttTopic('a/{method}', { category: 'x' })).toBe('a/');
    // Distinct categories stay distinct topics.
    expect(mqttTopic('{category}', { category: 'a/b' })).not.toBe(mqttTopic('{category}', { category: 'a%2Fb' }));
  });

  it('MQTT_USERNAME / MQTT_PASSWORD win over the URL, which is used for what they leave out', () => {
    expect(mqttCredentials({ url: 'mqtt://u:p%40ss@broker:1883' })).toEqual({}); // mqtt.js reads the URL itself
    expect(mqttCredentials({ url: 'mqtt://u:p%40ss@broker:1883', password: 'other' })).toEqual({ auth: undefined, username: 'u', password: 'other' });
    expect(mqttCredentials({ url: 'mqtt://u:p%40ss@broker:1883', username: 'svc' })).toEqual({ auth: undefined, username: 'svc', password: 'p@ss' });
    expect(mqttCredentials({ url: 'mqtt://broker:1883', username: 'svc', password: 'pw' })).toEqual({ auth: undefined, username: 'svc', password: 'pw' });
  });

  it('validates MQTT_URL and MQTT_TOPIC', () => {
    const s = loadSettings({ MQTT_URL: 'mqtt://user:pw@broker:1883' });
    expect([s.mqttUrl, s.mqttTopic, s.mqttMaxAttempts]).toEqual(['mqtt://user:pw@broker:1883', 'anomaly/{category}', 20]);
    expect(() => loadSettings({ MQTT_URL: 'http://broker:1883' })).toThrow(/MQTT_URL="http:\/\/broker:1883": an mqtt:\/\/ or mqtts:\/\/ URL/);
    expect(() => loadSettings({ MQTT_TOPIC: 'anomaly/#' })).toThrow(/MQTT_TOPIC="anomaly\/#": a topic name without \+ and #/);
    expect(() => loadSettings({ MQTT_TOPIC: 'anomaly/+/x' })).toThrow(/MQTT_TOPIC=/);
  });
});

async function brokerReachable(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = tcpConnect(BROKER.port, BROKER.host);
    const timer = setTimeout(() => done('no answer within 2 s'), 2000);
    const done = (reason?: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    socket.once('connect', () => done());
    socket.once('error', (err: Error & { code?: string }) => done(err.code ?? err.message));
  });
}

const unreachable = await brokerReachable();
if (unreachable) console.warn(`MQTT broker tests skipped: no MQTT broker on ${BROKER.host}:${BROKER.port} (${unreachable})`);

/** A TCP proxy to the broker on a fixed port, listening only while `up`. */
class BrokerProxy {
  private server?: TcpServer;
  private readonly sockets = new Set<Socket>();
  constructor(readonly port: number) {}

  async up(): Promise<void> {
    this.server = createTcpServer((client) => {
      const upstream = tcpConnect(BROKER.port, BROKER.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => (this.server ? this.server.close(resolve) : resolve(undefined)));
    this.server = undefined;
  }
}

async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Received {
  topic: string;
  qos: number;
  event: any;
}

/** A QoS 1 subscriber on `<root>/#`. */
async function subscribe(root: string): Promise<{ received: Received[]; client: MqttClient }> {
  const client = await mqtt.connectAsync(`mqtt://${BROKER.host}:${BROKER.port}`, { clientId: `test-sub-${randomUUID().slice(0, 8)}`, clean: true });
  const received: Received[] = [];
  client.on('message', (topic, payload, packet) => received.push({ topic, qos: packet.qos, event: JSON.parse(payload.toString('utf8')) }));
  await client.subscribeAsync(`${root}/#`, { qos: 1 });
  return { received, client };
}

/** A webhook receiver that accepts everything, to show both sinks get the event. */
async function webhookReceiver(): Promise<{ url: string; bodies: any[]; server: HttpServer }> {
  const bodies: any[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies, server };
}


describe.skipIf(Boolean(unreachable))('MQTT publishing (real broker)', () => {
  let svc: TinyService;
  let png: Buffer;
  const opened: Array<{ close(): Promise<unknown> }> = [];

  beforeAll(async () => {
    svc = await startTinyService();
    png = await partPng();
  });
  afterEach(async () => {
    for (const thing of opened.splice(0).reverse()) await thing.close().catch(() => {});
  });
  afterAll(() => svc?.close());

  async function setUp(mqttOpts: Partial<MqttOptions> & { url: string; topic: string }, options: { dataDir?: string; webhookUrl?: string } = {}) {
    const mqttOptions: MqttOptions = { maxAttempts: 50, backoffMs: 20, timeoutMs: 2000, shutdownGraceMs: 200, pollMs: 100, ...mqttOpts };
    const webhook = options.webhookUrl
      ? { url: options.webhookUrl, secret: SECRET, maxAttempts: 5, backoffMs: 20, timeoutMs: 2000, includeOverlay: false, shutdownGraceMs: 200, pollMs: 100 }
      : undefined;
    const { app, store, metrics, logs, dataDir } = await startEventApp(svc, opened, { dataDir: options.dataDir, mqtt: mqttOptions, webhook });
    return { app, store, metrics, logs, dataDir };
  }

  const detect = (app: FastifyInstance, threshold: number, category = 'metal plate', map = 'none') => detectEvent(app, png, threshold, { category, map });

  it('publishes each anomalous event with QoS 1 on its category topic, and the webhook gets the same event', async () => {
    const root = `test-${randomUUID()}`;
    const sub = await subscribe(root);
    opened.push({ close: () => sub.client.endAsync(true) });
    const hook = await webhookReceiver();
    opened.push({ close: () => new Promise((r) => hook.server.close(r)) });
    const { app, store, metrics } = await setUp({ url: `mqtt://${BROKER.host}:${BROKER.port}`, topic: `${root}/anomaly/{category}` }, { webhookUrl: hook.url });

    const a = (await detect(app, 0)).json();
    const b = (await detect(app, 0, 'metal/plate+2')).json();
    expect((await detect(app, 1)).json().isAnomalous).toBe(false); // no event for a normal one
    expect([a.isAnomalous, b.isAnomalous]).toEqual([true, true]);

    await until('both messages and both webhook bodies', () => sub.received.length >= 2 && hook.bodies.length >= 2);
    await until('the outbox empty', async () => (await store.outboxStats()).pending === 0);
    expect(sub.received.map((m) => m.qos)).toEqual([1, 1]);
    const byTopic = Object.fromEntries(sub.received.map((m) => [m.topic, m.event]));
    expect(Object.keys(byTopic).sort()).toEqual([`${root}/anomaly/metal plate`, `${root}/anomaly/metal%2Fplate%2B2`]);
    const first = byTopic[`${root}/anomaly/metal plate`];
    expect(first).toMatchObject({ type: 'detection.anomalous', category: 'metal plate', requestId: expect.any(String), score: a.score, threshold: 0 });
    // One event, two sinks: the same id (the idempotency key) on the broker and at the webhook.
    expect(sub.received.map((m) => m.event.id).sort()).toEqual(hook.bodies.map((e) => e.id).sort());
    expect(await store.outboxStats()).toMatchObject({ delivered: 4, gaveUp: 0 });
    // A delivery is counted once its row's write is durable, which resolves after the fsync that
    // follows the commit the stats above already read.
    const counted = async () => {
      const rendered = await metrics.render();
      return /^mqtt_deliveries_total\{outcome="delivered"\} 2$/m.test(rendered) && /^webhook_deliveries_total\{outcome="delivered"\} 2$/m.test(rendered);
    };
    await until('both deliveries counted', counted);
    await new Promise((r) => setTimeout(r, 300));
    expect(sub.received).toHaveLength(2); // nothing sent twice while all went well
  });

  it('on its own (no webhook) it carries the overlay PNG when WEBHOOK_INCLUDE_OVERLAY is on', async () => {
    const root = `test-${randomUUID()}`;
    const sub = await subscribe(root);
    opened.push({ close: () => sub.client.endAsync(true) });
    const { app } = await setUp({ url: `mqtt://${BROKER.host}:${BROKER.port}`, topic: `${root}/{method}/{category}`, includeOverlay: true });
    const result = (await detect(app, 0, 'metal plate', 'overlay')).json();
    await until('the message', () => sub.received.length >= 1);
    const [message] = sub.received;
    expect(message!.topic).toBe(`${root}/${result.method}/metal plate`);
    expect(message!.event.overlay).toMatchObject({ mime: 'image/png', encoding: 'base64', width: 96, height: 64 });
    expect(Buffer.from(message!.event.overlay.data, 'base64').subarray(1, 4).toString('latin1')).toBe('PNG');
  });

  it('keeps events while the broker is unreachable and delivers them once it is back, also after a restart', async () => {
    const root = `test-${randomUUID()}`;
    const sub = await subscribe(root);
    opened.push({ close: () => sub.client.endAsync(true) });
    const proxy = new BrokerProxy(await freePort());
    opened.push({ close: () => proxy.down() });
    const url = `mqtt://127.0.0.1:${proxy.port}`;
    const topic = `${root}/{category}`;

    const first = await setUp({ url, topic });
    const requestIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await detect(first.app, 0);
      expect(res.statusCode).toBe(200);
      requestIds.push(String(res.headers['x-request-id']));
    }
    await until('three retry lines', () => first.logs.lines.filter((l) => l.msg === 'MQTT delivery attempt failed; will retry').length >= 3);
    const retry = first.logs.lines.find((l) => l.msg === 'MQTT delivery attempt failed; will retry')!;
    expect(retry.reason).toMatch(/MQTT broker not connected \(ECONNREFUSED\)/);
    expect(await first.store.outboxStats()).toMatchObject({ pending: 3, delivered: 0 });
    expect(sub.received).toEqual([]);

    // A restart while the broker is still away: the events are in the store, not in memory.
    await first.app.close();
    await first.store.close();
    await proxy.up();
    const second = await setUp({ url, topic }, { dataDir: first.dataDir });
    await until('three messages', () => sub.received.length >= 3);
    await until('the outbox empty', async () => (await second.store.outboxStats()).pending === 0);
    expect(sub.received.map((m) => m.event.requestId).sort()).toEqual([...requestIds].sort());
    expect(new Set(sub.received.map((m) => m.event.id)).size).toBe(3);
    expect(sub.received.every((m) => m.qos === 1 && m.topic === `${root}/metal plate`)).toBe(true);
    expect(await second.store.outboxStats()).toMatchObject({ delivered: 3, gaveUp: 0 });
  }, 60_000);
});
