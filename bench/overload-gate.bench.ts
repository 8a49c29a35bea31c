// `node --import tsx bench/overload-gate.bench.ts`: the CPU a refusal costs when every place is
// taken. The server (a child process, a detector whose queue is always full, logs discarded)
// answers POST /v1/detect in front of Fastify (src/routes/overload-gate.ts), without the
// REFUSAL_DELAY_MS pause (buildApp's default), so refusals come as fast as they are answered; 28 keep-alive
// clients send 2 KB bodies for 5 s after a 1 s warm-up. Prints refusals per second and the
// server's and the client's CPU per refusal.
import http from 'node:http';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/app.ts';
import { fullDetector } from '../src/dev/full-detector.ts';

const CLIENTS = 28;

async function server(): Promise<void> {
  const app = await buildApp({ detector: fullDetector, defaultThreshold: 0.5, maxBodyBytes: 1e6, logLevel: 'info', logStream: { write() {} } as never });
  await app.listen({ port: 0, host: '127.0.0.1' });
  process.send!((app.server.address() as { port: number }).port);
  // Each message asks for the CPU microseconds used so far.
  process.on('message', () => {
    const u = process.cpuUsage();
    process.send!(u.user + u.system);
  });
}

async function client(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['server'], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
  const serverCpu = () =>
    new Promise<number>((resolve) => {
      child.once('message', (m) => resolve(m as number));
      child.send('cpu');
    });
  const body = Buffer.alloc(2000);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const headers = { 'content-type': 'image/png', 'content-length': body.length };
  const refusal = () =>
    new Promise<void>((resolve) => {
      const req = http.request({ agent, host: '127.0.0.1', port, path: '/v1/detect?category=metal%20plate&map=none', method: 'POST', headers }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', () => resolve());
      req.end(body);
    });
  const run = async (ms: number) => {
    let n = 0;
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (performance.now() < end) {
          await refusal();
          n++;
        }
      }),
    );
    return n;
  };
  await run(1000);
  const server0 = await serverCpu();
  const client0 = process.cpuUsage();
  const started = performance.now();
  const n = await run(5000);
  const seconds = (performance.now() - started) / 1000;
  const serverUs = (await serverCpu()) - server0;
  const clientUs = process.cpuUsage(client0);
  console.log(`${(n / seconds).toFixed(0)} refusals/s; server ${(serverUs / n).toFixed(1)} µs CPU each, client ${((clientUs.user + clientUs.system) / n).toFixed(1)} µs each`);
  agent.destroy();
  child.kill();
}

await (process.argv[2] === 'server' ? server() : client());
