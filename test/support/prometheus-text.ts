/**
 * A small parser of the Prometheus text exposition format (samples only; HELP/TYPE lines are
 * checked to name each sample's family), for asserting exact metric values in tests.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name!, type!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const match = SAMPLE_LINE.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const [, name, labelText, valueText] = match;
    const family = [...types.keys()].find((family) => name === family || name!.startsWith(`${family}_`));
    if (family === undefined) throw new Error(`sample ${name} has no TYPE line before it`);
    const labels: Record<string, string> = {};
    for (const label of (labelText ?? '').matchAll(LABEL)) labels[label[1]!] = label[2]!.replace(/\\(.)/g, '$1');
    // Prometheus parses values like Go's ParseFloat: NaN in any case (prom-client writes `Nan`).
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    if (Number.isNaN(value) && valueText!.toLowerCase() !== 'nan') throw new Error(`bad value in ${line}`);
    samples.push({ name: name!, labels, value });
  }
  return samples;
}

/** The value of the one sample named `name` whose labels include `labels`; an error when none or several match. */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const matches = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matches.length > 1) throw new Error(`${matches.length} samples of ${name} match ${JSON.stringify(labels)}`);
  if (matches.length === 0) throw new Error(`no sample of ${name} matches ${JSON.stringify(labels)}`);
  return matches[0]!.value;
}

/** GETs `<baseUrl>/metrics` and parses it; checks status and content type. */
export async function scrape(baseUrl: string): Promise<Sample[]> {
  const response = await fetch(`${baseUrl}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  const contentType = response.headers.get('content-type') ?? '';
  if (!contentType.startsWith('text/plain; version=0.0.4')) throw new Error(`/metrics content type ${contentType}`);
  return parsePrometheusText(await response.text());
}
