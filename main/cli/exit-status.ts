/**
 * The CLI's exit status for an expected error, by its kind (README, "CLI reference"):
 *  - 2: what was typed must change. The words themselves are wrong (a malformed or out-of-range
 *    value, a name too long or with invisible characters), or they name something that is not there
 *    (no VM, snapshot, disk, forward, download or file by that name), or something already taken (a
 *    VM or snapshot name in use, an export FILE or a host port that exists or is held). Typing
 *    something else fixes it; the same words will fail again whatever happens meanwhile.
 *  - 1: the words were fine but the operation failed or cannot happen now: the VM is running or
 *    suspended (invalid-state), someone else is at it (busy), QEMU or qemu-img failed, a timeout, the
 *    disk is full, a VM's files are damaged, the host lacks QEMU or a feature.
 * Usage errors the parser finds (unknown option, missing operand) are 2 as well (cli/index.ts).
 *
 * The table is keyed by every ErrorCode, so a new code cannot be added without deciding its status.
 */
import { ErrorCode } from '../common/errors';

const STATUS: Readonly<Record<ErrorCode, 1 | 2>> = {
  [ErrorCode.InvalidArgument]: 2,
  [ErrorCode.NotFound]: 2,
  [ErrorCode.AlreadyExists]: 2,
  [ErrorCode.InvalidState]: 1,
  [ErrorCode.Busy]: 1,
  [ErrorCode.BrokenBundle]: 1,
  [ErrorCode.QemuMissing]: 1,
  [ErrorCode.QemuFailed]: 1,
  [ErrorCode.Timeout]: 1,
  [ErrorCode.Unsupported]: 1,
  [ErrorCode.Unauthorized]: 1,
  [ErrorCode.DiskFull]: 1,
  [ErrorCode.Internal]: 1,
};

/** 2 when the person must type something else (the error is about the words), 1 when the operation
 *  failed; see the file comment. An unknown code (from a newer engine) is 1. */
export function exitStatusFor(code: ErrorCode): 1 | 2 {
  return Object.hasOwn(STATUS, code) ? STATUS[code] : 1;
}
