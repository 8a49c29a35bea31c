// deploy/kubernetes: every object of every YAML file validates against the Kubernetes API
// schemas (kubernetes-models: the official OpenAPI definitions compiled to validators, no
// cluster or network needed), and the manifests agree with the service: probe paths answer on
// the real app, the container port is PORT's default, every environment variable is a setting,
// the HPA's metric is one /metrics exposes, the grace period outlasts the drain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { loadSettings, SETTINGS } from '../../src/settings.ts';
import { ServiceMetrics } from '../../src/observability/metrics.ts';
import { startTinyService, type TinyService } from '../support/tiny-service.ts';

const DIR = join(import.meta.dirname, '..', '..', 'deploy', 'kubernetes');

/** The kinds the manifests may use, by apiVersion/kind; anything else fails (nothing goes unchecked). */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
};

interface Manifest {
  file: string;
  object: any;
}

function loadManifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(DIR, file), 'utf8'))) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      const object = doc.toJS();
      if (object !== null) out.push({ file, object });
    }
  }
  return out;
}

/** Throws the schema violation of one object, naming its file. */
function validate({ file, object }: Manifest): void {
  const key = `${object.apiVersion}/${object.kind}`;
  const Model = MODELS[key];
  if (!Model) throw new Error(`${file}: ${key} is not a kind this test knows how to validate`);
  try {
    new Model(object).validate();
  } catch (err) {
    throw new Error(`${file} (${key} ${object.metadata?.name}): ${(err as Error).message}`);
  }
}

const manifests = loadManifests();
const objects = manifests.filter((m) => m.object.kind !== 'Kustomization');
const one = (kind: string) => {
  const found = objects.filter((m) => m.object.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!.object;
};
const settingNames = new Set(Object.values(SETTINGS).map((s) => s.env));

describe('Kubernetes manifests', () => {
  it('every object validates against the Kubernetes schemas', () => {
    expect(objects.map((m) => m.object.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PersistentVolumeClaim', 'PodDisruptionBudget', 'Secret', 'Service']);
    for (const m of objects) expect(() => validate(m)).not.toThrow();
  });

  it('a broken copy fails: wrong field types and missing required fields are caught', () => {
    const deployment = objects.find((m) => m.object.kind === 'Deployment')!;
    const broken = structuredClone(deployment.object);
    broken.spec.replicas = 'two';
    expect(() => validate({ file: 'broken.yaml', object: broken })).toThrow(/broken\.yaml .*replicas must be integer/);
    const badProbe = structuredClone(deployment.object);
    badProbe.spec.template.spec.containers[0].readinessProbe.periodSeconds = '5s';
    expect(() => validate({ file: 'broken.yaml', object: badProbe })).toThrow(/periodSeconds must be integer/);
    const hpa = structuredClone(one('HorizontalPodAutoscaler'));
    delete hpa.spec.scaleTargetRef;
    expect(() => validate({ file: 'broken.yaml', object: hpa })).toThrow(/scaleTargetRef/);
    expect(() => validate({ file: 'x.yaml', object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } } })).toThrow(/not a kind this test knows/);
  });

  it('kustomization.yaml lists every manifest file', () => {
    const kustomization = manifests.find((m) => m.object.kind === 'Kustomization')!.object;
    expect([...kustomization.resources].sort()).toEqual([...new Set(objects.map((m) => m.file))].sort());
  });

  it('names agree: Service, PDB and HPA point at the Deployment and its pods; envFrom at the ConfigMap and Secret', () => {
    const deployment = one('Deployment');
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    expect(one('Service').spec.selector).toEqual(labels);
    expect(one('PodDisruptionBudget').spec.selector.matchLabels).toEqual(labels);
    expect(one('HorizontalPodAutoscaler').spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    const pod = deployment.spec.template.spec;
    for (const c of [...pod.initContainers, ...pod.containers]) {
      expect(c.envFrom).toEqual([{ configMapRef: { name: one('ConfigMap').metadata.name } }, { secretRef: { name: one('Secret').metadata.name } }]);
    }
    const claims = pod.volumes.filter((v: any) => v.persistentVolumeClaim).map((v: any) => v.persistentVolumeClaim.claimName);
    expect(claims).toEqual([one('PersistentVolumeClaim').metadata.name]);
    const service = one('Service');
    const portNames = pod.containers[0].ports.map((p: any) => p.name);
    for (const p of service.spec.ports) expect(portNames).toContain(p.targetPort);
  });

  it('every environment variable the manifests set is a setting of src/settings.ts', () => {
    const names: string[] = [...Object.keys(one('ConfigMap').data), ...Object.keys(one('Secret').stringData)];
    const pod = one('Deployment').spec.template.spec;
    for (const c of [...pod.initContainers, ...pod.containers]) names.push(...(c.env ?? []).map((e: any) => e.name));
    expect(names.length).toBeGreaterThan(10);
    expect(names.filter((n) => !settingNames.has(n))).toEqual([]);
  });

  it('the values validate as settings (with a real API key in place of the placeholder)', () => {
    const pod = one('Deployment').spec.template.spec;
    const env = { ...one('ConfigMap').data, ...one('Secret').stringData, API_KEYS: 'k'.repeat(32) };
    for (const c of [...pod.initContainers, ...pod.containers]) {
      const own = Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value]));
      expect(() => loadSettings({ ...env, ...own })).not.toThrow();
    }
    expect(loadSettings(env)).toMatchObject({ port: 3000, cacheDir: '/models', offline: true, executionProvider: 'cpu', workers: 1 });
  });

  it('the placeholder API key is refused, so an unedited Secret cannot start a service behind a published key', () => {
    const secret = one('Secret').stringData;
    expect(() => loadSettings({ ...one('ConfigMap').data, API_KEYS: secret.API_KEYS })).toThrow(/API_KEYS=/);
  });

  it('the container port is the PORT the service listens on, the cache volume is MODEL_CACHE_DIR, the init container runs npm run prefetch', () => {
    const config = one('ConfigMap').data;
    const pod = one('Deployment').spec.template.spec;
    const service = pod.containers[0];
    const port = Number(config.PORT ?? SETTINGS.port.default);
    expect(service.ports).toEqual([{ name: 'http', containerPort: port }]);
    expect(service.readinessProbe.httpGet.port).toBe('http');
    expect(service.livenessProbe.httpGet.port).toBe('http');
    const mount = (c: any) => c.volumeMounts.find((v: any) => v.name === 'models').mountPath;
    expect(mount(service)).toBe(config.MODEL_CACHE_DIR);
    const prefetch = pod.initContainers[0];
    expect(mount(prefetch)).toBe(config.MODEL_CACHE_DIR);
    const scripts = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')).scripts;
    expect(prefetch.command.join(' ')).toBe(scripts.prefetch);
    // The service itself never downloads: the init container did.
    expect(config.HF_HUB_OFFLINE).toBe('1');
    expect(prefetch.env).toContainEqual({ name: 'HF_HUB_OFFLINE', value: '0' });
  });

  it('termination grace outlasts preStop plus the drain (SHUTDOWN_TIMEOUT_MS)', () => {
    const pod = one('Deployment').spec.template.spec;
    const drainMs = Number(one('ConfigMap').data.SHUTDOWN_TIMEOUT_MS ?? SETTINGS.shutdownTimeoutMs.default);
    expect(drainMs).toBeGreaterThan(0); // 0 would mean "wait forever": no grace period outlasts it
    const preStop = pod.containers[0].lifecycle.preStop.exec.command;
    expect(preStop[0]).toBe('sleep');
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(preStop[1]) * 1000 + drainMs);
  });

  it('memory requests are within the limits', () => {
    const bytes = (q: string) => {
      const m = /^(\d+)(Mi|Gi)$/.exec(q);
      if (!m) throw new Error(`unexpected quantity ${q}`);
      return Number(m[1]) * (m[2] === 'Gi' ? 2 ** 30 : 2 ** 20);
    };
    const pod = one('Deployment').spec.template.spec;
    for (const c of [...pod.initContainers, ...pod.containers]) {
      expect(bytes(c.resources.requests.memory)).toBeLessThanOrEqual(bytes(c.resources.limits.memory));
      // Above the measured peak RSS (1.73 GiB, deployment.yaml and README).
      expect(bytes(c.resources.requests.memory)).toBeGreaterThan(1.73 * 2 ** 30);
    }
  });

  it('the HPA scales on a per-pod gauge that /metrics exposes', async () => {
    const hpa = one('HorizontalPodAutoscaler');
    expect(hpa.spec.metrics).toHaveLength(1);
    const [metric] = hpa.spec.metrics;
    expect(metric.type).toBe('Pods');
    const rendered = await new ServiceMetrics().render();
    expect(rendered).toMatch(new RegExp(`^# TYPE ${metric.pods.metric.name} gauge$`, 'm'));
  });
});

describe('probe paths on the real app', () => {
  let svc: TinyService;
  beforeAll(async () => {
    svc = await startTinyService();
  });
  afterAll(() => svc?.close());

  it('readiness and liveness paths answer 200 on a ready service', async () => {
    const service = one('Deployment').spec.template.spec.containers[0];
    for (const probe of [service.readinessProbe, service.livenessProbe]) {
      const res = await svc.app.inject({ method: 'GET', url: probe.httpGet.path });
      expect(res.statusCode, probe.httpGet.path).toBe(200);
    }
    expect((await svc.app.inject({ method: 'GET', url: '/readyz-typo' })).statusCode).toBe(404); // a wrong path would show
  });
});
