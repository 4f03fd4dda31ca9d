/**
 * The watch interface every config store implements (DESIGN §2.8): the directory of YAML files
 * today, etcd and Kubernetes later. A store hands out only validated, complete config sets;
 * a refused change leaves the last good set live and is reported through `errors()`.
 */
import type { ConfigSet } from '../api/config-set.js';
import type { ConfigDiagnostic } from '../api/diagnostics.js';

/** A config set the store accepted. */
export interface ConfigState {
  readonly config: ConfigSet;
  /** Content hash of the accepted sources. */
  readonly version: string;
  readonly acceptedAt: Date;
  readonly warnings: readonly ConfigDiagnostic[];
}

export interface ConfigStoreStatus {
  /** Where the config comes from, e.g. `files:/etc/trellis`. */
  readonly source: string;
  readonly version?: string;
  readonly acceptedAt?: string;
  readonly resources: number;
  /** The last time the sources changed, accepted or not. */
  readonly lastChangeAt?: string;
  /** Present when the latest change was refused: that change's version. */
  readonly refusedVersion?: string;
  readonly errors: readonly ConfigDiagnostic[];
  readonly warnings: readonly ConfigDiagnostic[];
}

/** A change the store refused: the live version (if any) stays. */
export interface ConfigRefusal {
  readonly version: string;
  readonly liveVersion?: string;
  readonly errors: readonly ConfigDiagnostic[];
  readonly at: Date;
}

/** Extra, store-independent checks on a candidate set (e.g. settings that need a restart). */
export type ConfigValidator = (config: ConfigSet) => ConfigDiagnostic[];

export interface ConfigStore {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The live config set; undefined until a valid set was ever loaded. */
  current(): ConfigState | undefined;
  /** Called after every accepted change. Returns an unsubscribe function. */
  onChange(listener: (state: ConfigState) => void): () => void;
  /** Called after every refused change (for the audit log). Returns an unsubscribe function. */
  onRefused?(listener: (refusal: ConfigRefusal) => void): () => void;
  /** The errors of the latest change when it was refused; empty when the live set is the latest. */
  errors(): readonly ConfigDiagnostic[];
  status(): ConfigStoreStatus;
}
