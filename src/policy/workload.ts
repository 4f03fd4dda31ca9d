/**
 * The workload a policy decision is about: the registry fills it from a WorkloadEntry (or, on
 * Kubernetes, a Pod). Plain data so it can travel in snapshots.
 */
export interface Workload {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The WorkloadEntry (or Pod) name, for messages. */
  readonly name?: string;
  readonly serviceAccount?: string;
}

/** `ns/name`, or `ns/*` for a workload known only by namespace and labels. */
export function workloadName(workload: Workload): string {
  return `${workload.namespace}/${workload.name ?? '*'}`;
}

/** Istio selector semantics: every selector label is present with the same value (an empty selector selects all). */
export function selectorMatches(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector ?? {})) {
    if (!Object.hasOwn(labels, key) || labels[key] !== value) return false;
  }
  return true;
}
