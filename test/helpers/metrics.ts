// Scrapes `signal --metrics` and reads it with a real Prometheus text-format parser
// (parse-prometheus-text-format), never with a regex over one line.
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format'

export interface Scrape {
  families: Map<string, PrometheusFamily>
  /** A counter's or gauge's value, for the sample whose labels include `labels`; throws if absent. */
  value(name: string, labels?: Record<string, string>): number
  /** Every sample of a labelled counter, by the value of `label`. */
  byLabel(name: string, label: string): Record<string, number>
  /** A histogram's sample count. */
  histogramCount(name: string): number
  text: string
}

export async function scrape(address: string): Promise<Scrape> {
  const response = await fetch(`http://${address}/metrics`)
  if (response.status !== 200) throw new Error(`GET /metrics: ${response.status}`)
  const text = await response.text()
  const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]))
  const family = (name: string): PrometheusFamily => {
    const f = families.get(name)
    if (!f) throw new Error(`metric ${name} missing; have ${[...families.keys()].join(', ')}`)
    return f
  }
  return {
    families,
    text,
    value(name, labels = {}) {
      const sample = family(name).metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
      if (sample?.value === undefined) throw new Error(`metric ${name}${JSON.stringify(labels)} has no sample`)
      return Number(sample.value)
    },
    byLabel(name, label) {
      return Object.fromEntries(family(name).metrics.map((m) => [m.labels?.[label] ?? '', Number(m.value)]))
    },
    histogramCount(name) {
      const sample = family(name).metrics[0]
      if (sample?.count === undefined) throw new Error(`histogram ${name} has no count`)
      return Number(sample.count)
    },
  }
}
