/**
 * Mesh configs the end-to-end tests share, as Istio YAML files for MeshProcesses.start.
 */

/** The zero-trust baseline: deny by default, STRICT mTLS mesh-wide. */
export const ZERO_TRUST_MESH = `apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec: {defaultAuthorization: DENY}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`;

/**
 * client → server (HTTP on `web`: GET /ok/* allowed for the client) and client → echo (TCP on
 * `echo`), all in `default`, on the zero-trust baseline: the mesh the metrics and top tests read.
 */
export function clientServerEchoMesh(web: number, echo: number): Record<string, string> {
  return {
    'mesh.yaml': ZERO_TRUST_MESH,
    'services.yaml': `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: server, namespace: default}
spec:
  hosts: [server.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: server}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 9000, name: tcp, protocol: TCP}]
  workloadSelector: {labels: {app: echo}}
`,
    'workloads.yaml': `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: default}
spec: {address: 127.0.0.1, serviceAccount: client, labels: {app: client, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: server, namespace: default}
spec: {address: 127.0.0.1, serviceAccount: server, labels: {app: server, version: v2}, ports: {http: ${web}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo, namespace: default}
spec: {address: 127.0.0.1, serviceAccount: echo, labels: {app: echo}, ports: {tcp: ${echo}}}
`,
    'policies.yaml': `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: server-allow, namespace: default}
spec:
  selector: {matchLabels: {app: server}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/ok/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: echo-allow, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]
`,
  };
}
