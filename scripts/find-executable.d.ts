/** The program's path, or undefined when it is not installed. */
export function findExecutable(name: string): string | undefined
