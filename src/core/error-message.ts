// What a caught value says, for a one-line message: its message if it is an Error, else the value as text.
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
