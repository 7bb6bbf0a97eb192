// A command in a real terminal (tmux), for the live views: start it, read the screen until something shows,
// close it. One place for what every terminal test needs to know.
import { execFileSync } from 'node:child_process'
import { ROOT } from './cli.js'

export class Terminal {
  private constructor(readonly name: string) {}

  /**
   * Starts `command` (a shell line, run in the repository root) in a detached tmux session of cols × rows.
   * The command runs without CI in its environment: tmux gives it the environment of whoever started the tmux
   * server (CI=true under CI), and with CI set Ink renders no live frames and colours go off, while a person at
   * a terminal is no CI.
   */
  static open(command: string, size: { cols: number; rows: number }): Terminal {
    const name = `cunicu-ts-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
    execFileSync('tmux', ['new-session', '-d', '-s', name, '-x', String(size.cols), '-y', String(size.rows), '-c', ROOT, `env -u CI ${command}`])
    return new Terminal(name)
  }

  /** The screen as text; with `escapes`, with its colour escape sequences. */
  screen(options: { escapes?: boolean } = {}): string {
    return execFileSync('tmux', ['capture-pane', '-p', ...(options.escapes ? ['-e'] : []), '-t', this.name]).toString()
  }

  /** Reads the screen every 100 ms until `done` holds or `timeoutMs` passed; returns the last screen. */
  async waitFor(done: (screen: string) => boolean, timeoutMs: number, options: { escapes?: boolean } = {}): Promise<string> {
    const deadline = Date.now() + timeoutMs
    let screen = this.screen(options)
    while (!done(screen) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      screen = this.screen(options)
    }
    return screen
  }

  /** Ends the session (SIGHUP to everything in it). */
  close(): void {
    execFileSync('tmux', ['kill-session', '-t', this.name])
  }
}
