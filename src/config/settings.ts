/**
 * The machinery behind a table of settings: each setting is described once (flag, `CAIRN_*`
 * environment variable, zod schema, default, unit, description, secrecy) and from that one entry
 * come its command-line option, its help line, the way its text is parsed, its validation from every
 * source, and its place in `cairn config print`. The table itself for `cairn serve` is in
 * `serve-config.ts`; this module knows nothing about particular settings.
 *
 * Sources, highest first: flag > environment variable > config file > default. Values from the
 * environment and the command line are text and are parsed by the setting's kind (whole numbers,
 * booleans); values from a config file keep their YAML/JSON type (text is accepted and parsed the
 * same way). Every value then goes through the same zod schema, so a setting has one set of rules
 * whichever source it came from.
 */
import { z } from 'zod';

/** One setting of a table. `S` is its zod schema; optional settings use `.optional()` and have no default. */
export interface Setting<S extends z.ZodType = z.ZodType> {
  /** The command-line flag as commander takes it: `--port <number>` (a value) or `--s3-force-path-style` (a switch). */
  flag: string;
  /** The environment variable twin, `CAIRN_*`. */
  env: string;
  /** Validates the typed value from every source; its messages become the reason in errors. */
  schema: S;
  /** The value when no source gives one; absent for optional settings (they stay unset). */
  default?: z.output<S>;
  /** Unit of a number (`bytes`, `ms`, `count`) shown in help and the README; absent for text. */
  unit?: string;
  /** One line for `--help` and the README. */
  description: string;
  /** What an unset optional setting means, for help and the README (e.g. `keep`, `AWS`). */
  unsetMeans?: string;
  /** The value is a credential: `cairn config print` shows `<redacted>` instead of it. */
  secret?: boolean;
  /** The setting's spellings before it was renamed, still accepted for one release with a warning. */
  formerly?: FormerSpelling;
}

/**
 * The old flag, variable and config-file key of a renamed setting. Each counts as the same source
 * as its new spelling (an old flag still beats a new variable); given both in one source, the new
 * spelling wins. Every use adds a deprecation warning to the resolution.
 */
export interface FormerSpelling {
  /** The old long flag, without its value: `--max-append-bytes`. */
  flag: string;
  /** The old variable: `CAIRN_MAX_APPEND_BYTES`. */
  env: string;
  /** The old config-file key, the camelCase of the old flag: `maxAppendBytes`. */
  key: string;
}

/** Keeps the exact schema type of one table entry (so the config type can be inferred). */
export function setting<S extends z.ZodType>(entry: Setting<S>): Setting<S> {
  return entry;
}

export type SettingTable = Record<string, Setting>;

/** The zod object of a table: one key per setting, optional where the setting's schema is. */
export type SettingsShape<T extends SettingTable> = { [K in keyof T]: T[K]['schema'] };

export function settingsObject<T extends SettingTable>(table: T): z.ZodObject<SettingsShape<T>> {
  const shape = Object.fromEntries(Object.entries(table).map(([key, entry]) => [key, entry.schema]));
  return z.object(shape) as unknown as z.ZodObject<SettingsShape<T>>;
}

/** Where a value came from. */
export type SettingSource =
  | { kind: 'flag'; flag: string }
  | { kind: 'env'; name: string }
  | { kind: 'file'; path: string }
  | { kind: 'default' }
  | { kind: 'unset' };

export function describeSource(source: SettingSource): string {
  switch (source.kind) {
    case 'flag':
      return `flag ${source.flag}`;
    case 'env':
      return `env ${source.name}`;
    case 'file':
      return `file ${source.path}`;
    case 'default':
      return 'default';
    case 'unset':
      return 'not set';
  }
}

/** One thing wrong with the configuration: which key, from which source, and why. */
export interface ConfigIssue {
  key: string;
  source: SettingSource;
  reason: string;
}

/**
 * The configuration is invalid. `issues` holds every problem found; the message has one line per
 * issue in the form `invalid configuration: <key> (<source>): <reason>`. The CLI prints each line
 * prefixed with `cairn: ` and exits 2, before anything listens.
 */
export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return `invalid configuration: ${issue.key} (${describeSource(issue.source)}): ${issue.reason}`;
}

/** `--port <number>` → `--port`. */
export function longFlag(entry: Setting): string {
  return entry.flag.split(/\s+/)[0] ?? entry.flag;
}

/** Whether the flag is a switch (no value: `--s3-force-path-style`). */
export function isSwitch(entry: Setting): boolean {
  return !/[<[]/.test(entry.flag);
}

/** `--s3-force-path-style` → `s3ForcePathStyle`, as commander names the option's value. */
export function flagToKey(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

/** The schema without its `.optional()` wrapper: what kind of value the setting holds. */
function valueSchema(entry: Setting): z.ZodType {
  let schema = entry.schema;
  while (schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
  return schema;
}

type Kind = 'integer' | 'boolean' | 'text';

function kindOf(entry: Setting): Kind {
  const schema = valueSchema(entry);
  if (schema instanceof z.ZodNumber) return 'integer';
  if (schema instanceof z.ZodBoolean) return 'boolean';
  return 'text';
}

/** Choices of an enum setting, or undefined. */
export function choicesOf(entry: Setting): readonly string[] | undefined {
  const schema = valueSchema(entry);
  return schema instanceof z.ZodEnum ? (schema.options as readonly string[]) : undefined;
}

/** Inclusive range of a number setting, or undefined. */
export function rangeOf(entry: Setting): { min: number; max: number } | undefined {
  const schema = valueSchema(entry);
  if (!(schema instanceof z.ZodNumber)) return undefined;
  return { min: schema.minValue ?? Number.MIN_SAFE_INTEGER, max: schema.maxValue ?? Number.MAX_SAFE_INTEGER };
}

const BOOLEAN_TEXT: Record<string, boolean> = { true: true, '1': true, yes: true, on: true, false: false, '0': false, no: false, off: false };

/** Parses text from a flag or variable into the setting's kind; `{ error }` if it is not one. */
function parseText(entry: Setting, text: string): { value: unknown } | { error: string } {
  switch (kindOf(entry)) {
    case 'integer': {
      const trimmed = text.trim();
      if (!/^-?\d+$/.test(trimmed)) return { error: `expected a whole number, got "${text}"` };
      return { value: Number(trimmed) };
    }
    case 'boolean': {
      const value = BOOLEAN_TEXT[text.trim().toLowerCase()];
      return value === undefined ? { error: `expected true or false (also 1/0, yes/no, on/off), got "${text}"` } : { value };
    }
    case 'text':
      return { value: text };
  }
}

/** Raw inputs of one resolution. */
export interface ConfigSources {
  /** Values given on the command line, by key: text, or `true` for a switch. Only keys the user typed. */
  flags: Record<string, string | boolean | undefined>;
  /** The environment (`process.env`); an empty variable counts as unset. */
  env: Record<string, string | undefined>;
  /** A parsed config file (camelCase keys), and its path for messages. */
  file?: { path: string; values: Record<string, unknown> };
}

export interface ResolvedConfig<T> {
  config: T;
  /** The source of every key of the table (`unset` for optional settings nobody gave). */
  sources: Record<string, SettingSource>;
  /**
   * One line per old spelling given (see `FormerSpelling`), in table order:
   * `--max-append-bytes is deprecated; use --append-bytes-max`, with `(both given: … wins)` or
   * `(ignored: … wins)` when another value was used. The CLI prints each once, before it starts.
   */
  warnings: string[];
}

/** One way a value can be given: a source and the spelling it used. */
interface Candidate {
  source: SettingSource;
  raw: unknown;
  /** The spelling used, for warnings: the flag, the variable or the file key. */
  spelling: string;
  /** The new spelling in the same source, when this candidate is an old one. */
  replacement?: string;
}

/** Every value given for a setting, highest first: flag, env, file; within each, the new spelling first. */
function candidatesOf(key: string, entry: Setting, sources: ConfigSources): Candidate[] {
  const found: Candidate[] = [];
  const former = entry.formerly;
  const flagOf = (flag: string, value: string | boolean | undefined, replacement?: string) => {
    if (value !== undefined) found.push({ source: { kind: 'flag', flag }, raw: value, spelling: flag, replacement });
  };
  const envOf = (name: string, replacement?: string) => {
    const value = sources.env[name];
    if (value !== undefined && value !== '') found.push({ source: { kind: 'env', name }, raw: value, spelling: name, replacement });
  };
  const fileOf = (fileKey: string, replacement?: string) => {
    const file = sources.file;
    const value = file?.values[fileKey];
    if (file === undefined || value === undefined || value === null) return;
    found.push({ source: { kind: 'file', path: file.path }, raw: value, spelling: `${fileKey} (file ${file.path})`, replacement });
  };
  flagOf(longFlag(entry), sources.flags[key]);
  if (former !== undefined) flagOf(former.flag, sources.flags[former.key], longFlag(entry));
  envOf(entry.env);
  if (former !== undefined) envOf(former.env, entry.env);
  fileOf(key);
  if (former !== undefined) fileOf(former.key, key);
  return found;
}

/** The deprecation warning of an old spelling, saying which value won when it was not this one. */
function deprecationWarning(candidate: Candidate, winner: Candidate): string {
  const warning = `${candidate.spelling} is deprecated; use ${candidate.replacement ?? ''}`;
  if (candidate === winner) return warning;
  // Within one source the new spelling comes first, so a winner from the same source is the new one.
  if (winner.source.kind === candidate.source.kind) return `${warning} (both given: ${candidate.replacement ?? ''} wins)`;
  return `${warning} (ignored: ${describeSource(winner.source)} wins)`;
}

/**
 * Resolves a table's values from its sources (flag > env > file > default), validates each with
 * its schema and then the whole object with `objectSchema` (cross-field rules, reported on the
 * key named by the issue's path). Old spellings (`Setting.formerly`) are accepted with a warning.
 * Throws ConfigError listing every issue, including config-file keys the table does not know.
 */
export function resolveConfig<T extends SettingTable, O>(table: T, objectSchema: z.ZodType<O>, sources: ConfigSources): ResolvedConfig<O> {
  const issues: ConfigIssue[] = [];
  const warnings: string[] = [];
  const values: Record<string, unknown> = {};
  const origin: Record<string, SettingSource> = {};

  if (sources.file !== undefined) {
    const formerKeys = new Set(Object.values(table).flatMap((entry) => (entry.formerly === undefined ? [] : [entry.formerly.key])));
    for (const key of Object.keys(sources.file.values)) {
      if (Object.hasOwn(table, key) || formerKeys.has(key)) continue;
      issues.push({ key, source: { kind: 'file', path: sources.file.path }, reason: `unknown setting${unknownKeyHint(table, key)}` });
    }
  }

  for (const [key, entry] of Object.entries(table)) {
    const candidates = candidatesOf(key, entry, sources);
    const winner = candidates[0];
    for (const candidate of candidates) if (candidate.replacement !== undefined) warnings.push(deprecationWarning(candidate, winner ?? candidate));
    if (winner === undefined) {
      if (entry.default !== undefined) values[key] = entry.default;
      origin[key] = entry.default !== undefined ? { kind: 'default' } : { kind: 'unset' };
      continue;
    }
    const source = winner.source;
    let raw = winner.raw;
    origin[key] = source;
    // A switch on the command line is `true`; every other text is parsed by the setting's kind.
    if (typeof raw === 'string' && !(source.kind === 'file' && kindOf(entry) === 'text')) {
      const parsed = parseText(entry, raw);
      if ('error' in parsed) {
        issues.push({ key, source, reason: parsed.error });
        continue;
      }
      raw = parsed.value;
    }
    const checked = entry.schema.safeParse(raw);
    if (!checked.success) {
      issues.push({ key, source, reason: checked.error.issues.map((issue) => issue.message).join('; ') });
      continue;
    }
    values[key] = checked.data;
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const whole = objectSchema.safeParse(values);
  if (!whole.success) {
    throw new ConfigError(
      whole.error.issues.map((issue) => {
        const key = String(issue.path[0] ?? '');
        return { key, source: origin[key] ?? { kind: 'unset' }, reason: issue.message };
      }),
    );
  }
  return { config: whole.data, sources: origin, warnings };
}

/** The words of a key, lower case and sorted: `maxStreams` and `streamsMax` give the same list. */
function wordsOf(key: string): string {
  return key
    .split(/(?=[A-Z])|[-_]/)
    .map((word) => word.toLowerCase())
    .filter((word) => word.length > 0)
    .sort()
    .join(' ');
}

/**
 * The did-you-mean of an unknown config-file key: the table key with the same words (kebab or
 * snake case, qualifiers in another order, an old spelling in kebab case), else a general hint.
 */
export function unknownKeyHint(table: SettingTable, key: string): string {
  const words = wordsOf(key);
  for (const [known, entry] of Object.entries(table)) {
    if (wordsOf(known) === words || (entry.formerly !== undefined && wordsOf(entry.formerly.key) === words)) {
      return ` (did you mean ${known}? keys are camelCase, units and qualifiers last)`;
    }
  }
  return ' (keys are camelCase, as `cairn config print` shows them)';
}

/** The text a help line or README row shows for a setting's default. */
export function defaultText(entry: Setting): string {
  if (entry.default === undefined) return entry.unsetMeans ?? 'not set';
  if (typeof entry.default === 'boolean') return entry.default ? 'on' : 'off';
  if (typeof entry.default === 'number' && entry.unit === 'bytes' && entry.default >= 1024) {
    return `${entry.default} (${humanBytes(entry.default)})`;
  }
  return String(entry.default);
}

/** 67108864 → `64 MiB`; only exact binary multiples, else the byte count. */
export function humanBytes(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 'bytes';
  for (const next of units) {
    if (value % 1024 !== 0 || value === 0) break;
    value /= 1024;
    unit = next;
  }
  return `${value} ${unit}`;
}

/** What values a setting takes, for help: `bytes, 1-134217728`, `one of: wal, memory`, `switch`. */
export function valueText(entry: Setting): string {
  const choices = choicesOf(entry);
  if (choices !== undefined) return `one of: ${choices.join(', ')}`;
  if (isSwitch(entry)) return 'switch';
  const range = rangeOf(entry);
  if (range !== undefined) {
    const max = range.max >= Number.MAX_SAFE_INTEGER ? 'no max' : String(range.max);
    return `${entry.unit ?? 'integer'}, ${range.min}-${max}`;
  }
  return entry.unit ?? 'text';
}

/** The description `--help` shows for a setting: meaning, values and unit, default, env var. */
export function helpText(entry: Setting): string {
  return `${entry.description} [${valueText(entry)}] (default: ${defaultText(entry)}; env: ${entry.env})`;
}

/** Shown instead of a secret's value. */
export const REDACTED = '<redacted>';

/** The configuration with every secret setting's value replaced by `<redacted>`; unset keys left out. */
export function redactedConfig(table: SettingTable, config: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(table)) {
    const value = (config as Record<string, unknown>)[key];
    if (value === undefined) continue;
    out[key] = entry.secret === true ? REDACTED : value;
  }
  return out;
}
