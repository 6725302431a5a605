/** Turning anything thrown into the one sentence the user sees. Never a stack trace, never a CLI
 *  command (renderer/lib/remedy.ts words the remedy as a button or a field message instead). */
import { uiError } from './remedy';

export function errorMessage(e: unknown): string {
  return uiError(e).message;
}
