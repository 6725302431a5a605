/**
 * A string as one POSIX shell word, for commands Vivarium suggests to a person ("vivarium stop 'my vm'").
 * Used on both sides of the contract (engine messages and the CLI), so it lives in common/.
 */

/** Returns `s` unchanged when it is made only of characters no shell treats specially, else wraps it
 *  in single quotes (an embedded `'` becomes `'\''`). Names are any text, and a suggestion pasted into
 *  a terminal must never run part of a name. */
export function shellArg(s: string): string {
  return /^[A-Za-z0-9_./:@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
