// Small text helpers shared by the views.
export const shortKey = (key: string) => key.slice(0, 8) + '…'

export const clock = (iso: string) => iso.slice(11, 23)

export function bytes(n: number): string {
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`
}
