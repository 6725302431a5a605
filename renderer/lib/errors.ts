/** Turning anything thrown into the one sentence the user sees. Never a stack trace. */
import { isVivariumError } from '../../main/common/errors';

export function errorMessage(e: unknown): string {
  if (isVivariumError(e)) return e.message;
  // Errors rebuilt by another copy of the module, or plain `{code, message}` objects from a transport.
  if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') {
    const msg = (e as { message: string }).message.split('\n')[0]?.trim();
    if (msg) return msg;
  }
  if (typeof e === 'string' && e.trim() !== '') return e.split('\n')[0]!.trim();
  return 'Something went wrong. Try again; if it keeps happening, check the engine log.';
}
