import { buildApp } from './src/app.ts';
import http from 'node:http';
import { fork } from 'node:child_process';
if (process.argv[2] === 'server') {
  const app = await buildApp({ detector: { ready: true, info: () => ({}) as never, detect: async () => ({}) as never, close: async () => {}, admissionFull: () => true }, defaultThreshold: 0.5, maxBodyBytes: 1e6, logLevel: process.env.LL ?? 'info', logStream: { write() {} } as never });
  await app.listen({ port: 0, host: '127.0.0.1' });
  process.send!((app.server.address() as any).port);
  process.on('message', () => { const u = process.cpuUsage(); process.send!(u.user + u.system); });
} else {
  const child = fork(new URL(import.meta.url).pathname, ['server'], { execArgv: ['--import', 'tsx'] });
  const port: number = await new Promise((r) => child.once('message', r as never));
  const cpu = () => new Promise<number>((r) => { child.once('message', r as never); child.send('cpu'); });
  const body = Buffer.alloc(2000);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 28 });
  const one = () => new Promise<void>((resolve) => { const req = http.request({ agent, host: '127.0.0.1', port, path: '/v1/detect?category=metal%20plate&map=none', method: 'POST', headers: { 'content-type': 'image/png', 'content-length': body.length } }, (res) => { res.resume(); res.on('end', resolve); }); req.on('error', () => resolve()); req.end(body); });
  const run = async (ms: number) => { let n = 0; const end = performance.now() + ms; await Promise.all(Array.from({ length: 28 }, async () => { while (performance.now() < end) { await one(); n++; } })); return n; };
  await run(1000);
  const c0 = await cpu(); const cl0 = process.cpuUsage(); const t0 = performance.now();
  const n = await run(5000);
  const s = (performance.now() - t0) / 1000; const c1 = await cpu(); const cl = process.cpuUsage(cl0);
  console.log(`${(n / s).toFixed(0)} refusals/s; server ${((c1 - c0) / n).toFixed(1)} µs CPU each, client ${((cl.user + cl.system) / n).toFixed(1)} µs each`);
  child.kill();
}
